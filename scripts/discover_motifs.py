"""Adapter of rule discover_motifs: contributions.h5 -> modisco.h5."""

from peak2motif.motifs import discover_motifs
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
discover_motifs(
    contributions=snakemake.input.contributions,  # noqa: F821
    modisco_h5=snakemake.output.modisco,  # noqa: F821
    params=dict(snakemake.params.cfg),  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
