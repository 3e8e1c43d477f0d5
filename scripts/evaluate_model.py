"""Rule evaluate_model: metrics and plots on the valid and test splits (peak2motif.evaluate)."""

from peak2motif.evaluate import run_evaluation
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
run_evaluation(
    sm.input.model, sm.input.valid, sm.input.test, sm.input.history, sm.output.metrics,
    sm.output.metrics_html, sm.output.curves, sm.output.training_curves,
    batch_size=sm.params.batch_size, average_strands=sm.params.average_strands,
    threads=sm.threads,
)
