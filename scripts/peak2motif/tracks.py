"""Per-base contribution tracks in genome coordinates (bigWig, via pyBigWig).

The value at a base is the actual contribution there (summed over the four channels, i.e. the
contribution of the observed base). Where attributed windows overlap, the values are averaged
(``overlap="mean"``) or the one of largest magnitude is kept (``"max_abs"``). Rows without
genome coordinates (e.g. dinucleotide-shuffled negatives) are skipped.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from peak2motif.contributions import read_task, task_names
from peak2motif.errors import InputError
from peak2motif.genome import chromosome_lengths
from peak2motif.regions import read_regions
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)


def per_base_track(chroms: np.ndarray, starts: np.ndarray, values: np.ndarray,
                   sizes: dict[str, int], overlap: str = "mean") -> dict[str, tuple]:
    """Merge per-window values into one value per covered base.

    Parameters
    ----------
    chroms, starts
        ``(N,)`` chromosome and 0-based start of each window.
    values
        ``(N, L)`` value of each base of each window.
    overlap
        ``mean`` or ``max_abs`` for bases covered by several windows.

    Returns
    -------
    ``{chrom: (positions, values)}`` with sorted unique positions, in the order of ``sizes``.
    """
    if overlap not in ("mean", "max_abs"):
        raise InputError(f"unknown overlap rule {overlap!r}", key="attribution: track_overlap",
                         fix="use mean or max_abs")
    length = values.shape[1]
    out = {}
    for chrom in sizes:
        rows = np.flatnonzero(chroms == chrom)
        if len(rows) == 0:
            continue
        pos = (starts[rows, None] + np.arange(length)).ravel()
        val = values[rows].ravel().astype(np.float64)
        inside = (pos >= 0) & (pos < sizes[chrom])
        pos, val = pos[inside], val[inside]
        order = np.argsort(pos, kind="stable")
        pos, val = pos[order], val[order]
        uniq, first, counts = np.unique(pos, return_index=True, return_counts=True)
        if overlap == "mean":
            merged = np.add.reduceat(val, first) / counts
        else:
            # the value of largest magnitude in each group
            key = np.lexsort((-np.abs(val), pos))
            pos_sorted = pos[key]
            merged = val[key][np.r_[0, np.flatnonzero(np.diff(pos_sorted)) + 1]]
        out[chrom] = (uniq, merged)
    return out


def write_contribution_track(contributions_h5: str | os.PathLike,
                             regions_tsv: str | os.PathLike, genome: str | os.PathLike,
                             out_bw: str | os.PathLike, overlap: str = "mean") -> int:
    """Write the per-base actual contributions of the explained peaks of the first task as a
    bigWig (negatives are left out: they are there for the motif stage's null).

    Returns
    -------
    The number of bases written.
    """
    import pyBigWig

    sizes = chromosome_lengths(genome)  # pyfaidx; builds the .fai when missing
    regions = read_regions(regions_tsv)
    tasks = task_names(contributions_h5)
    if tasks:
        c = read_task(contributions_h5, tasks[0], positives_only=True)
        values, idx = c.actual.sum(-1), c.region_index
    else:
        values, idx = np.zeros((0, 1)), np.zeros(0, dtype=np.int64)
    rows = regions.iloc[idx]
    # shuffled negatives have no genome coordinates of their own
    rows = rows.assign(start=rows["start"].where(rows["kind"] != "shuffle"))
    length = values.shape[1]
    chroms = rows["chrom"].to_numpy(dtype=object)
    starts = pd.to_numeric(rows["start"], errors="coerce").to_numpy(dtype=np.float64)
    ends = pd.to_numeric(rows["end"], errors="coerce").to_numpy(dtype=np.float64)
    known = np.array([c in sizes for c in chroms]) & np.isfinite(starts)
    known &= (ends - starts) == length
    if (~known).any():
        log.info("skipping %d of %d windows without genome coordinates", (~known).sum(),
                 len(known))
    track = per_base_track(chroms[known].astype(str), starts[known].astype(np.int64),
                           values[known], sizes, overlap)
    n = 0
    with atomic_output(out_bw) as tmp:
        bw = pyBigWig.open(str(tmp), "w")
        bw.addHeader(list(sizes.items()))
        for chrom, (pos, val) in track.items():
            bw.addEntries([chrom] * len(pos), pos.astype(np.int64).tolist(),
                          ends=(pos + 1).astype(np.int64).tolist(), values=val.tolist())
            n += len(pos)
        bw.close()
    log.info("wrote %d bases to %s", n, out_bw)
    return n
