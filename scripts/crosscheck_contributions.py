"""Adapter of rule crosscheck_contributions: independent checks on a sample of one fold."""

from peak2motif.attribution import crosscheck
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    crosscheck(
        sm.input.model,
        {s: sm.input[s] for s in ("train", "valid", "test")},
        sm.output.checks,
        sm.params.cfg,
        sm.params.model,
        n_folds=sm.params.folds,
        threads=sm.threads,
    )
