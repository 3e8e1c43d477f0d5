"""Adapter of rule evaluate_model: one fold's metrics and test predictions."""

from peak2motif.evaluate import evaluate_fold
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    evaluate_fold(
        sm.input.model,
        {s: sm.input[s] for s in ("valid", "test")},
        sm.input.regions,
        sm.output.metrics,
        sm.output.predictions,
        fold=int(sm.wildcards.fold),
        batch_size=sm.params.batch_size,
        average_strands=sm.params.average_strands,
        threads=sm.threads,
    )
