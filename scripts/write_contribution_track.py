"""Adapter of rule write_contribution_track: contributions as a bigWig track."""

from peak2motif.tracks import write_contribution_track
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    write_contribution_track(
        contributions_h5=sm.input.contributions,
        regions_tsv=sm.input.regions,
        genome=sm.input.genome,
        out_bw=sm.output.bigwig,
        overlap=sm.params.overlap,
    )
