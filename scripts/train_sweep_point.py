"""Adapter of rule train_sweep_point: one point of the sweep on one fold (peak2motif.sweep)."""

from pathlib import Path

from peak2motif.sweep import train_point
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    train_point(
        sm.input.train,
        sm.input.valid,
        Path(sm.output.model).parent,
        sm.params.model,
        sm.params.training,
        sm.params.overrides,
        threads=sm.threads,
        init_model=sm.input.get("init"),
        freeze_convolutions=sm.params.freeze_convolutions,
    )
