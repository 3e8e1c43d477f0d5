"""Adapter of rule simulate_demo: the demo genome, peaks and truth table."""

from peak2motif.simulate import simulate_demo
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    simulate_demo(sm.output.genome, sm.output.peaks, sm.output.planted, sm.output.variants,
                  **dict(sm.params.cfg))
