"""Adapter of rule call_instances: reported motifs -> instances in genome coordinates."""

from peak2motif.instances import call_instances
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    call_instances(
        sm.input.table,
        sm.input.patterns,
        dict(zip(sm.params.tasks, sm.input.modisco, strict=True)),
        sm.input.contributions,
        sm.input.regions,
        sm.output.beds,
        sm.output.counts,
        sm.output.figure,
        sm.output.html,
        dict(sm.params.cfg),
    )
