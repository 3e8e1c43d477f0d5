"""Rule select_model: summarise the sweep and keep its best point's model (peak2motif.sweep)."""

from peak2motif.sweep import select_model
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
select_model(
    sm.params.points, sm.params.overrides, sm.input.metrics, sm.input.history, sm.input.model,
    sm.input.h5, sm.params.metric, sm.output.summary, sm.output.summary_html, sm.output.model,
    sm.output.h5, sm.output.history,
)
