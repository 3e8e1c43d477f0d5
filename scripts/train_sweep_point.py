"""Rule train_sweep_point: train one point of the hyperparameter sweep (see peak2motif.sweep)."""

from pathlib import Path

from peak2motif.sweep import train_point
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
train_point(
    sm.input.train, sm.input.valid, Path(sm.output.model).parent, sm.params.model,
    sm.params.training, sm.params.overrides, threads=sm.threads,
    init_model=sm.input.get("init"), freeze_convolutions=sm.params.freeze_convolutions,
)
