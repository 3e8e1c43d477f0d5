"""Sequence extraction: genome windows -> uint8 codes -> split files (see ``sequences``).

Windows are read through ``peak2motif.genome`` (vectorised reads of the memory-mapped FASTA;
bgzip through pyfaidx) and written in chunks of ``chunk_size`` rows, so memory depends on the
chunk size and the window length, not on the genome or the number of regions.

Rows of ``regions.tsv`` of kind ``shuffle`` are dinucleotide-shuffled negatives: their
coordinates are those of the positive they were made from, and their sequence is that
positive's sequence shuffled (dinucleotide counts kept exactly) from a seed of (seed, row).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from peak2motif import regiontable, sequences
from peak2motif.errors import InputError
from peak2motif.genome import Genome
from peak2motif.splitfiles import append_split, create_split
from peak2motif.utils import atomic_output

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)



def iter_codes(
    genome: str | Path,
    chroms: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    chunk_size: int = 4096,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(rows, codes)`` chunks for windows of equal length, in the given order.

    ``rows`` is ``(n,)`` int64 (positions in the input), ``codes`` is ``(n, L)`` uint8; every
    chunk but the last has ``chunk_size`` rows. All windows are checked before the first
    chunk (see ``Genome.check_windows``). Callers sort by chromosome and start for locality.
    """
    with Genome(genome) as g:
        g.check_windows(chroms, starts, ends)
        n = len(chroms)
        for lo in range(0, n, chunk_size):
            hi = min(n, lo + chunk_size)
            yield (np.arange(lo, hi, dtype=np.int64),
                   g.read_codes(chroms[lo:hi], starts[lo:hi], ends[lo:hi]))


def window_stats(
    genome: str | Path, regions: pd.DataFrame, chunk_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """GC fraction (of A/C/G/T bases) and N fraction of each window, both ``(N,)`` float64."""
    order = np.lexsort((regions["start"].to_numpy(), regions["chrom"].to_numpy()))
    gc = np.zeros(len(regions))
    nfrac = np.zeros(len(regions))
    sub = regions.iloc[order]
    for rows, codes in iter_codes(genome, sub["chrom"].to_numpy(), sub["start"].to_numpy(),
                                  sub["end"].to_numpy(), chunk_size):
        acgt = (codes < 4).sum(1)
        gcn = ((codes == 1) | (codes == 2)).sum(1)
        gc[order[rows]] = gcn / np.maximum(acgt, 1)
        nfrac[order[rows]] = 1 - acgt / codes.shape[1]
    return gc, nfrac


def _row_seed(seed: int, row: int) -> int:
    return int(np.random.SeedSequence([seed, row]).generate_state(1)[0])


def extract_sequences(
    genome: str | Path,
    regions_path: str | Path,
    outputs: dict[int, dict[str, str | Path]],
    task_type: str,
    chunk_size: int = 4096,
    seed: int = 0,
) -> dict[int, dict[str, int]]:
    """Write split files: ``outputs[k][split]`` is the file of ``split`` in fold k.

    Each window is read from the genome once and appended to its split's file in every fold.
    Rows of kind ``shuffle`` are dinucleotide shuffles of the window, seeded by (seed, row).
    Returns the number of rows per split of each fold.
    """
    names = regiontable.header(regions_path)
    tasks = regiontable.label_names(names)
    folds = regiontable.split_names(names)
    missing = [k for k in outputs if f"split_{k}" not in folds]
    if missing:
        raise InputError(f"regions.tsv has {len(folds)} fold(s), not fold(s) {missing}",
                         path=str(regions_path), fix="rerun prepare_regions")
    # numpy only (pandas would cost more than reading the windows), and only these columns
    regions = regiontable.read_columns(
        regions_path, ["chrom", "start", "end", "kind", *tasks, *(f"split_{k}" for k in outputs)])
    n = len(regions["chrom"])
    labels_all = np.column_stack([regions[t] for t in tasks]).astype(np.float32) if tasks \
        else np.zeros((n, 0), np.float32)
    width = int(regions["end"][0] - regions["start"][0]) if n else 0
    order = np.lexsort((regions["start"], regions["chrom"]))
    chroms, starts, ends = (regions[c][order] for c in ("chrom", "start", "end"))
    shuffled = regions["kind"][order] == "shuffle"
    split_of = {k: regions[f"split_{k}"][order] for k in outputs}
    counts = {k: dict.fromkeys(out, 0) for k, out in outputs.items()}
    with contextlib.ExitStack() as stack:
        files = {}
        for k, out in outputs.items():
            fold_files = {}
            for split, path in out.items():
                tmp = stack.enter_context(atomic_output(path))
                fold_files[split] = stack.enter_context(
                    contextlib.closing(create_split(tmp, width, tasks, task_type,
                                                    chunk_rows=min(chunk_size, 1024))))
            files[k] = fold_files
        for rows, codes in iter_codes(genome, chroms, starts, ends, chunk_size):
            js = np.flatnonzero(shuffled[rows])
            if len(js):  # one call for the chunk: the walks run side by side
                codes[js] = sequences.dinuc_shuffles(codes[js], (
                    np.random.RandomState(_row_seed(seed, int(order[rows[j]]))) for j in js),
                    1)[:, 0]
            index = order[rows]
            for k, fold_files in files.items():
                for split, h5 in fold_files.items():
                    sel = split_of[k][rows] == split
                    append_split(h5, codes[sel], labels_all[index[sel]], index[sel])
                    counts[k][split] += int(sel.sum())
    for k, c in counts.items():
        log.info("fold %d: %s sequences (%d dinucleotide shuffles in all)", k, c,
                 int(shuffled.sum()))
    return counts
