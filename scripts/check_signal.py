"""Adapter of rule check_signal: reads in peaks, before anything trains on the track."""

import pandas as pd
from peak2motif.signal.checks import signal_in_peaks
from peak2motif.utils import atomic_output, run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    summary = signal_in_peaks(
        list(sm.input.tracks),
        sm.input.peaks,
        min_fraction=sm.params.min_fraction,
    )
    with atomic_output(sm.output[0]) as tmp:
        pd.DataFrame([summary]).to_csv(tmp, sep="\t", index=False)
