"""Adapter of rule verify_contributions: the gathered file checked -> checks.tsv, page."""

from peak2motif.utils import run_rule
from peak2motif.verify import verify_contributions

with run_rule(snakemake) as sm:  # noqa: F821
    verify_contributions(
        sm.input.contributions,
        list(sm.input.models),
        list(sm.input.predictions),
        sm.input.job_checks,
        sm.output.checks,
        sm.output.checks_html,
        sm.params.cfg,
        threads=sm.threads,
    )
