"""Adapter of rule discover_motifs: one task's contributions -> modisco.h5."""

from peak2motif.motifs import discover_motifs
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    discover_motifs(
        sm.input.contributions,
        sm.output.modisco,
        dict(sm.params.cfg),
        task=sm.wildcards.task,
        threads=sm.threads,
    )
