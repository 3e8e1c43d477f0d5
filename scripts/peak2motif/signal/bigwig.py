"""Count tracks as bigWig: the streaming writer and the window reader.

Writing (pyBigWig): cut sites arrive chromosome by chromosome in the input's order; each
run of final positions (below the input's frontier) is counted and appended to a temporary
file per chromosome and track beside the output, and the bigWig is written from those in
the genome's order (a bigWig's chromosomes must be added in header order, and a BAM sorted
with another chromosome order is common). Memory holds one chunk of cut sites and one block
of the written entries, whatever the genome size.

Reading (pybigtools): ``read_windows`` fills an ``(N, L, S)`` float32 array; pybigtools'
per-window ``values`` was 5-7x faster than pyBigWig's in bench/signal_io.py, which is why
it reads and pyBigWig writes (pybigtools writes from Python tuples, one per entry).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

FLUSH_CUTS = 1 << 22  # pending cut sites per track before a partial flush
WRITE_BLOCK = 1 << 22  # entries per addEntries call


class _Runs:
    """Sorted (position, count) runs of each chromosome and track, spilled to disk."""

    def __init__(self, folder: str, n_tracks: int) -> None:
        self.folder = Path(folder)
        self.n_tracks = n_tracks
        self.pending: list[list[np.ndarray]] = [[] for _ in range(n_tracks)]
        self.n_pending = [0] * n_tracks
        self.stems: dict[str, dict[int, str]] = {}  # chrom -> track -> file stem
        self.chrom: str | None = None
        self.totals = np.zeros(n_tracks, dtype=np.float64)

    def add(self, chrom: str, tracks: Sequence[np.ndarray], final_below: int | None) -> None:
        if chrom != self.chrom:
            self.finish()
            if chrom in self.stems:
                raise RuntimeError(f"cut sites of {chrom} arrived after another chromosome")
            self.chrom = chrom
            self.stems[chrom] = {}
        for t, cuts in enumerate(tracks):
            if len(cuts):
                self.pending[t].append(cuts)
                self.n_pending[t] += len(cuts)
        if final_below is None:
            self.finish()
        else:
            for t in range(self.n_tracks):
                if self.n_pending[t] >= FLUSH_CUTS:
                    self._flush(t, final_below)

    def _flush(self, track: int, below: float) -> None:
        if not self.pending[track]:
            return
        cuts = np.sort(np.concatenate(self.pending[track]))
        cut = int(np.searchsorted(cuts, below, side="left"))
        final, rest = cuts[:cut], cuts[cut:]
        self.pending[track] = [rest] if len(rest) else []
        self.n_pending[track] = len(rest)
        if len(final) == 0:
            return
        pos, counts = np.unique(final, return_counts=True)
        stem = self.stems[self.chrom].setdefault(
            track, str(self.folder / f"{len(self.stems)}.{track}"))
        with open(stem + ".pos", "ab") as fh:
            pos.astype(np.int64).tofile(fh)
        with open(stem + ".cnt", "ab") as fh:
            counts.astype(np.float32).tofile(fh)
        self.totals[track] += len(final)

    def finish(self) -> None:
        """The current chromosome is complete: write out everything pending."""
        if self.chrom is None:
            return
        for t in range(self.n_tracks):
            self._flush(t, np.inf)
        self.chrom = None

    def runs(self, chrom: str, track: int) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """Blocks of (positions, counts) of one chromosome and track, in order."""
        stem = self.stems.get(chrom, {}).get(track)
        if stem is None:
            return
        n = os.path.getsize(stem + ".pos") // 8
        for start in range(0, n, WRITE_BLOCK):
            count = min(WRITE_BLOCK, n - start)
            pos = np.fromfile(stem + ".pos", dtype=np.int64, count=count, offset=8 * start)
            cnt = np.fromfile(stem + ".cnt", dtype=np.float32, count=count, offset=4 * start)
            yield pos, cnt


def write_count_tracks(stream, sizes: Mapping[str, int], out_paths: Sequence[str | os.PathLike],
                       stranded: bool) -> dict:
    """Count cut sites per base and write one bigWig per track.

    Parameters
    ----------
    stream
        Iterable of batches with ``chrom``, ``plus``, ``minus`` (int64 cut positions) and
        ``final_below`` (see :class:`peak2motif.signal.bam.CutBatch`).
    sizes
        Chromosome lengths: the bigWig header, in this order.
    out_paths
        Two paths (plus, minus) when ``stranded``, else one (both strands summed).

    Returns
    -------
    ``{"counts": {path: total count}}``. Each output appears only when complete.
    """
    import pyBigWig

    n_tracks = 2 if stranded else 1
    if len(out_paths) != n_tracks:
        raise ValueError(f"expected {n_tracks} output paths, got {len(out_paths)}")
    parent = Path(out_paths[0]).parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".signal.", dir=parent) as tmp:
        runs = _Runs(tmp, n_tracks)
        for batch in stream:
            tracks = ((batch.plus, batch.minus) if stranded
                      else (np.concatenate([batch.plus, batch.minus]),))
            runs.add(batch.chrom, tracks, batch.final_below)
        runs.finish()
        header = [(c, int(n)) for c, n in sizes.items()]
        with _atomic_all(out_paths) as tmps:
            for t, path in enumerate(tmps):
                bw = pyBigWig.open(str(path), "w")
                # no zoom levels: they tripled the file and the writing time (bench/
                # signal_io.py), and the window reader reads bases; a browser still shows
                # the track (slower when zoomed far out), as bpnet-lite's bam2bw writes it
                bw.addHeader(header, maxZooms=0)
                for chrom, _ in header:
                    for pos, cnt in runs.runs(chrom, t):
                        bw.addEntries(chrom, pos, values=cnt.astype(np.float64), span=1)
                bw.close()
    totals = {str(p): float(runs.totals[t]) for t, p in enumerate(out_paths)}
    log.info("counts written: %s", ", ".join(f"{p} {v:.0f}" for p, v in totals.items()))
    return {"counts": totals}


class _atomic_all:
    """atomic_output for several files: each appears only complete; an error while writing
    leaves none of them (an error in a later rename leaves the earlier ones, and the job
    fails)."""

    def __init__(self, paths) -> None:
        self.managers = [atomic_output(p) for p in paths]

    def __enter__(self):
        return [m.__enter__() for m in self.managers]

    def __exit__(self, *exc):
        failed = exc[0] is not None
        for m in self.managers:
            if failed:
                m.__exit__(*exc)
            else:
                try:
                    m.__exit__(None, None, None)
                except Exception as err:  # a rename failed: do not leave half a pair
                    exc = (type(err), err, err.__traceback__)
                    failed = True
        return False


def read_windows(tracks: Sequence[str | os.PathLike], chroms: Sequence[str],
                 starts: Sequence[int] | np.ndarray, length: int) -> np.ndarray:
    """Per-base counts of windows from count bigWigs.

    Parameters
    ----------
    tracks
        One bigWig per track (``[plus, minus]`` or ``[total]``).
    chroms, starts
        ``(N,)`` chromosome and 0-based start of each window.
    length
        ``L``, the window length.

    Returns
    -------
    ``(N, L, S)`` float32, ``S = len(tracks)``; uncovered bases and bases outside a
    chromosome are 0. pybigtools reads a NaN stored in a bigWig as 0 too, so user bigWigs
    go through :func:`peak2motif.signal.checks.check_bigwig` first (it refuses NaN).
    """
    import pybigtools

    starts = np.asarray(starts, dtype=np.int64)
    out = np.zeros((len(starts), length, len(tracks)), dtype=np.float32)
    row = np.empty(length, dtype=np.float64)
    for s, path in enumerate(tracks):
        reader = pybigtools.open(str(path))
        try:
            sizes = reader.chroms()
            size = np.array([sizes.get(c, 0) for c in chroms], dtype=np.int64)
            lo = np.maximum(starts, 0)
            hi = np.minimum(starts + length, size)
            # plain ints for the loop: numpy scalars cost more per call than the read itself
            for i, chrom, a, b, off in zip(range(len(starts)), chroms, lo.tolist(),
                                           hi.tolist(), (lo - starts).tolist(), strict=True):
                if a >= b:
                    continue
                view = row[: b - a]
                reader.values(chrom, a, b, uncovered=0.0, fillna=None, arr=view)
                out[i, off: off + b - a, s] = view
        finally:
            reader.close()
    return out
