"""Adapter of rule simulate_demo: the demo genome, peaks and truth table."""

from peak2motif.simulate import simulate_demo
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
cfg = dict(snakemake.params.cfg)  # noqa: F821
simulate_demo(
    snakemake.output.genome,  # noqa: F821
    snakemake.output.peaks,  # noqa: F821
    snakemake.output.planted,  # noqa: F821
    **cfg,
)
