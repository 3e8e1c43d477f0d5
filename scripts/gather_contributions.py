"""Adapter of rule gather_contributions: shards -> contributions.h5, job checks, figure."""

from peak2motif.attribution import gather_contributions
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    gather_contributions(
        list(sm.input.shards),
        list(sm.input.checks),
        list(sm.input.crosschecks),
        sm.input.regions,
        sm.output.contributions,
        sm.output.checks,
        None,  # the checks page is verify_contributions's, with its rows
        sm.output.figure,
        sm.params.cfg,
        planted_tsv=sm.input.get("planted"),
    )
