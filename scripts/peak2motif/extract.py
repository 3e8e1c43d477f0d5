"""Sequence extraction: genome windows -> uint8 codes -> split files (see ``sequences``).

Windows are read with pyfaidx, which seeks into the FASTA through its ``.fai`` index and never
loads a chromosome, and are written in chunks of ``chunk_size`` rows, so memory depends on the
chunk size and the window length, not on the genome or the number of regions.

Rows of ``regions.tsv`` whose name ends in ``::dinuc_shuffleK`` are dinucleotide-shuffled
negatives: their coordinates are those of the positive they were made from, and their
sequence is that positive's sequence shuffled with ``deeplift.dinuc_shuffle`` (which keeps
dinucleotide counts exactly, and the first and last base) from a seed of (seed, row).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from peak2motif import sequences
from peak2motif.errors import InputError
from peak2motif.sequences import (
    append_split,
    create_split,
    encode,
)
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

SHUFFLE_TAG = re.compile(r"::dinuc_shuffle\d+$")
REGION_COLUMNS = ["chrom", "start", "end", "name", "split"]


def open_fasta(path: str | Path):
    """Open a FASTA (plain or bgzip) for random access; InputError if it is missing or bad."""
    import pyfaidx

    path = Path(path)
    if not path.exists():
        raise InputError(
            "genome FASTA not found", path=str(path),
            fix="check the 'genome' path of the dataset in your config (relative paths start "
                "at the working directory)",
        )
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False,
                             rebuild=False, build_index=True)
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError) as err:
        raise InputError(
            f"cannot index the genome FASTA ({err})", path=str(path),
            fix="give an uncompressed FASTA or one compressed with `bgzip` (not plain gzip)",
        ) from None


def chromosome_lengths(path: str | Path) -> dict[str, int]:
    """Chromosome name -> length, in FASTA order."""
    fa = open_fasta(path)
    try:
        return {name: len(rec) for name, rec in fa.records.items()}
    finally:
        fa.close()


def iter_codes(
    genome: str | Path,
    chroms: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    chunk_size: int = 4096,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(rows, codes)`` chunks for windows of equal length, in the given order.

    ``rows`` is ``(n,)`` int64 (positions in the input), ``codes`` is ``(n, L)`` uint8.
    Callers sort by chromosome and start for locality.
    """
    fa = open_fasta(genome)
    try:
        n = len(chroms)
        width = int(ends[0] - starts[0]) if n else 0
        for lo in range(0, n, chunk_size):
            hi = min(n, lo + chunk_size)
            codes = np.empty((hi - lo, width), dtype=np.uint8)
            for j in range(lo, hi):
                seq = fa.faidx.fetch(chroms[j], int(starts[j]) + 1, int(ends[j]))
                codes[j - lo] = encode(seq)
            yield np.arange(lo, hi, dtype=np.int64), codes
    finally:
        fa.close()


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


def dinuc_shuffle_codes(codes: np.ndarray, seed: int) -> np.ndarray:
    """Dinucleotide shuffle of one sequence of codes ``(L,)`` with its own RandomState."""
    return sequences.dinuc_shuffle_codes(codes, np.random.RandomState(seed))


def _row_seed(seed: int, row: int) -> int:
    return int(np.random.SeedSequence([seed, row]).generate_state(1)[0])


def read_regions(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``regions.tsv``; return the table and its task (label) columns."""
    regions = pd.read_csv(path, sep="\t", dtype={"chrom": str, "name": str, "split": str})
    missing = [c for c in REGION_COLUMNS if c not in regions.columns]
    if missing:
        raise InputError(f"missing columns {missing}", path=str(path),
                         fix="regions.tsv is written by prepare_regions; rerun that rule")
    return regions, [c for c in regions.columns if c not in REGION_COLUMNS]


def extract_sequences(
    genome: str | Path,
    regions_path: str | Path,
    outputs: dict[str, str | Path],
    task_type: str,
    chunk_size: int = 4096,
    seed: int = 0,
) -> dict[str, int]:
    """Write one split file per entry of ``outputs`` ({split: path}); return rows per split."""
    regions, tasks = read_regions(regions_path)
    labels_all = regions[tasks].to_numpy(dtype=np.float32)
    width = int((regions["end"] - regions["start"]).iloc[0]) if len(regions) else 0
    counts = {}
    for split, out in outputs.items():
        sel = np.flatnonzero(regions["split"].to_numpy() == split)
        sub = regions.iloc[sel]
        order = np.lexsort((sub["start"].to_numpy(), sub["chrom"].to_numpy()))
        sel, sub = sel[order], sub.iloc[order]
        shuffled = sub["name"].str.contains(SHUFFLE_TAG).to_numpy()
        with atomic_output(out) as tmp:
            h5 = create_split(tmp, width, tasks, task_type, chunk_rows=min(chunk_size, 1024))
            try:
                for rows, codes in iter_codes(genome, sub["chrom"].to_numpy(),
                                              sub["start"].to_numpy(), sub["end"].to_numpy(),
                                              chunk_size):
                    for j in np.flatnonzero(shuffled[rows]):
                        region = int(sel[rows[j]])
                        codes[j] = dinuc_shuffle_codes(codes[j], _row_seed(seed, region))
                    append_split(h5, codes, labels_all[sel[rows]], sel[rows])
            finally:
                h5.close()
        counts[split] = len(sel)
        log.info("%s: %d sequences (%d dinucleotide-shuffled) -> %s", split, len(sel),
                 int(shuffled.sum()), out)
    return counts
