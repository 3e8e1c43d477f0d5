"""Adapter of rules make_signal_track and make_cut_site_track: BAM or fragments -> count
bigWigs."""

from peak2motif.signal import make_signal_track
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    make_signal_track(
        sm.input.source,
        sm.input.genome,
        sm.params.assay,
        list(sm.output),
        settings=sm.params.settings,
    )
