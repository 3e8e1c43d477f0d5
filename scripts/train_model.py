"""Rule train_model: train the network of one dataset (see peak2motif.train)."""

from peak2motif.train import run_training
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
run_training(
    sm.input.train, sm.input.valid, sm.output.model, sm.output.h5, sm.output.history,
    sm.params.model, sm.params.training, threads=sm.threads,
    init_model=sm.input.get("init"), freeze_convolutions=sm.params.freeze_convolutions,
)
