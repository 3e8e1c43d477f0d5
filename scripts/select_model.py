"""Adapter of rule select_model: the best sweep point over all folds (peak2motif.sweep)."""

from peak2motif.sweep import select_model
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    select_model(
        points=sm.params.points,
        overrides=sm.params.overrides,
        n_folds=sm.params.folds,
        metrics=list(sm.input.metrics),
        histories=list(sm.input.history),
        models=list(sm.input.model),
        h5s=list(sm.input.h5),
        metric=sm.params.metric,
        summary_tsv=sm.output.summary,
        summary_html=sm.output.summary_html,
        selected_dir=sm.output.models,
    )
