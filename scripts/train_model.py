"""Adapter of rule train_model: train one fold's network (see peak2motif.train)."""

from peak2motif.train import run_training
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    run_training(
        sm.input.train,
        sm.input.valid,
        sm.output.model,
        sm.output.h5,
        sm.output.history,
        sm.params.model,
        sm.params.training,
        threads=sm.threads,
        init_model=sm.input.get("init"),
        freeze_convolutions=sm.params.freeze_convolutions,
    )
