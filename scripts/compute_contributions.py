"""Adapter of rule compute_contributions: one shard of one fold, checked."""

from peak2motif.attribution import compute_contributions
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    compute_contributions(
        sm.input.model,
        {s: sm.input[s] for s in ("train", "valid", "test")},
        sm.output.contributions,
        sm.output.checks,
        sm.params.cfg,
        fold=int(sm.wildcards.fold),
        n_folds=sm.params.folds,
        shard=int(sm.wildcards.shard),
        threads=sm.threads,
    )
