"""Fragments files (10x Genomics / ArchR layout) -> Tn5 cut sites, streamed in file order.

Columns: chrom, start, end, barcode, count (only the first three are read); 0-based, end
exclusive; plain, gzip or bgzip; ``#`` lines are comments (Cell Ranger ATAC 2 writes a
header of them). The file must be sorted by chromosome, then start (``sort -k1,1 -k2,2n``,
which ``tabix -p bed`` requires too). Both ends are cut sites, at bases ``start`` and
``end`` (see :mod:`peak2motif.signal` for why ``end`` and not ``end - 1``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd

from peak2motif.errors import InputError
from peak2motif.signal.bam import CutBatch

log = logging.getLogger(__name__)

CHUNK_ROWS = 1 << 21
SORT_FIX = ("sort it and compress it again: (zcat -f FILE | grep -v '^#' | sort -k1,1 "
            "-k2,2n) | bgzip > sorted.tsv.gz && tabix -p bed sorted.tsv.gz")


def _compression(path: str) -> str | None:
    with open(path, "rb") as fh:
        return "gzip" if fh.read(2) == b"\x1f\x8b" else None


def read_chunks(path: str, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first line number, rows) of a fragments file, ``rows`` lines at a time."""
    try:
        reader = pd.read_csv(path, sep="\t", header=None, usecols=[0, 1, 2], comment="#",
                             names=["chrom", "start", "end"],
                             dtype={"chrom": str, "start": np.int64, "end": np.int64},
                             compression=_compression(path), chunksize=rows)
        line = 1
        for chunk in reader:
            yield line, chunk
            line += len(chunk)
    except (ValueError, pd.errors.ParserError) as err:
        raise InputError(f"not a fragments file ({err})", path=path,
                         fix="give tab-separated chrom, start, end, barcode, count lines "
                         "(the 10x Genomics / ArchR layout)") from None


def cut_sites(path: str, sizes: dict[str, int], genome: str | None = None, *,
              stats: dict | None = None, rows: int | None = None, max_rows: int | None = None,
              seen: list[str] | None = None) -> Iterator[CutBatch]:
    """Stream the two cut sites of every fragment, chromosome by chromosome.

    ``plus`` holds the left ends (``start``), ``minus`` the right ends (``end``); fragments
    on chromosomes that are not in ``sizes`` are skipped (``stats["other_references"]``).
    An unsorted file raises :class:`InputError` naming the line. ``max_rows`` stops early
    (the start-up check reads the head only); ``seen`` collects the chromosome names met.
    """
    stats = {} if stats is None else stats
    seen = [] if seen is None else seen
    finished: set[str] = set()
    current, last_start = None, -1
    n = kept = other = off = 0
    matched = False
    for line, chunk in read_chunks(path, rows or CHUNK_ROWS):
        chroms = chunk["chrom"].to_numpy()
        starts = chunk["start"].to_numpy()
        ends = chunk["end"].to_numpy()
        n += len(chunk)
        bounds = np.r_[0, np.flatnonzero(chroms[1:] != chroms[:-1]) + 1, len(chunk)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=False):
            chrom = chroms[a]
            s, e = starts[a:b], ends[a:b]
            if chrom != current:
                if chrom in finished:
                    raise InputError(f"the fragments of {chrom} are not together: they "
                                     f"start again at line {line + a} after other "
                                     "chromosomes", path=path, fix=SORT_FIX)
                if current is not None:
                    finished.add(current)
                current, last_start = chrom, -1
                seen.append(str(chrom))
            step = np.flatnonzero(np.diff(np.r_[last_start, s]) < 0)
            if len(step):
                raise InputError(f"the fragments are not sorted by start: line "
                                 f"{line + a + step[0]} starts before the line above it",
                                 path=path, fix=SORT_FIX)
            if np.any(e <= s):
                bad = int(np.flatnonzero(e <= s)[0])
                raise InputError(f"line {line + a + bad}: end {e[bad]} is not after start "
                                 f"{s[bad]}", path=path, fix="fix or drop that line")
            last_start = int(s[-1])
            size = sizes.get(chrom)
            if size is None:
                other += b - a
                continue
            matched = True
            kept += b - a
            left, right = s[(s >= 0) & (s < size)], e[(e >= 0) & (e < size)]
            off += 2 * (b - a) - len(left) - len(right)
            yield CutBatch(chrom, left.copy(), right.copy(), last_start)
        if max_rows is not None and n >= max_rows:
            break
    stats.update(fragments=n, kept=kept, other_references=other, cut_sites_off=off)
    log.info("%s: %d fragments, %d on the genome's chromosomes", path, n, kept)
    if n and not matched and max_rows is None:
        from peak2motif.signal.checks import name_mismatch

        raise name_mismatch(path, seen, sizes, genome)
