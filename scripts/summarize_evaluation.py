"""Adapter of rule summarize_evaluation: per-fold and pooled metrics, curves."""

from peak2motif.evaluate import summarize_evaluation
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    summarize_evaluation(
        list(sm.input.metrics),
        list(sm.input.predictions),
        list(sm.input.history),
        sm.input.regions,
        sm.params.task_type,
        sm.output.metrics,
        sm.output.metrics_html,
        sm.output.curves,
        sm.output.training_curves,
        monitor=sm.params.monitor,
    )
