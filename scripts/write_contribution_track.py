"""Adapter of rule write_contribution_track: contributions as a bigWig track."""

from peak2motif.tracks import write_contribution_track
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
write_contribution_track(
    contributions_h5=snakemake.input.contributions,  # noqa: F821
    regions_tsv=snakemake.input.regions,  # noqa: F821
    genome=snakemake.input.genome,  # noqa: F821
    out_bw=snakemake.output.bigwig,  # noqa: F821
    overlap=snakemake.params.overlap,  # noqa: F821
)
