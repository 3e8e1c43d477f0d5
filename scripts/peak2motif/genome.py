"""Genome access: the one module that opens genome FASTA files (the genome contract).

Accepted genomes
----------------
- Plain FASTA: every line of a record holds the same number of bases except its last, as
  ``samtools faidx`` and pyfaidx require; lines end in ``\\n`` or ``\\r\\n``; bases may be upper
  or lower case (soft-masked) and any IUPAC code.
- bgzip-compressed FASTA (``bgzip genome.fa``), read through pyfaidx: correct but several
  times slower, one call per window. Plain gzip cannot be read at random and is refused with
  an :class:`~peak2motif.errors.InputError` saying to recompress with bgzip.
- The ``.fai`` index next to the FASTA is built by pyfaidx when it is missing (that is also
  where the line layout is checked) and used as it is when present.

Windows
-------
Windows are 0-based and half-open, ``[start, end)``, all of one length ``L``, and must lie
inside their chromosome. They are read as codes ``(N, L)`` uint8 with the lookup table of
:func:`peak2motif.sequences.encode` (A, C, G, T in either case -> 0..3, anything else -> 4).
A chromosome missing from the FASTA, or a window outside its chromosome, is an InputError
that names the FASTA.

How windows are read
--------------------
Hand-written, because the libraries (pyfaidx, pysam, bedtools) cost one call, and one
Python string, per window. The FASTA is memory-mapped and each window's bytes are found from
the ``.fai`` (record offset, bases per line, bytes per line); windows are sorted by file
position and read in groups, each with a few vectorised numpy copies, no per-window Python:

- *dense* groups (windows of one chromosome whose lengths add up to at least half the
  stretch they span, see ``DENSE_SPAN_FACTOR``; e.g. many or overlapping peaks): the
  stretch is encoded once, its line ends dropped by viewing whole lines as
  ``(lines, bytes per line)``, and every window is a row of a sliding-window view of it;
- *sparse* groups: every window becomes one fixed-length row of file bytes (whole lines from
  the line of its first base when lines are shorter than the window, else from its first base
  with at most one line end inside), line ends are dropped the same way, and the window is
  the row from its first base's column on.

Bytes become codes with ``bytes.translate`` over cache-sized blocks (a uint8 fancy index
would first cast every byte to an 8-byte index). Results are identical to pyfaidx's.

Memory: a group spans at most ``SPAN_BYTES`` of the file. Its pages are mapped in one call
(``MADV_POPULATE_READ``, Linux >= 5.14) before it is read and unmapped after
(``MADV_DONTNEED``; the page cache keeps them), so resident memory is set by that span and
the batch (rows x window length), never by the chromosome or genome size.
"""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from peak2motif.errors import InputError
from peak2motif.sequences import encode

SPAN_BYTES = 16 << 20  # file bytes one group of windows may span (its resident pages)
ROW_BYTES = 1 << 18  # bytes of gathered rows per batch: temporaries stay in cache
MIN_RUN = 64  # windows on one chromosome that get a group of their own
DENSE_SPAN_FACTOR = 2  # encode a whole stretch once when it is at most this x window bytes
_BLOCK = 1 << 18  # bytes per bytes.translate call: fits in cache, no large temporaries
_AROUND = 1 << 20  # also unmapped around a group: the kernel maps pages near a faulting one
_TABLE = encode(np.arange(256, dtype=np.uint8)).tobytes()  # byte -> code, as encode
_GZIP_MAGIC = b"\x1f\x8b"
# Linux >= 5.14 maps a range of cached file pages in one call, instead of one page fault per
# page (Python 3.11's mmap module lacks the name; 22 is its value in the Linux headers)
_POPULATE = getattr(mmap, "MADV_POPULATE_READ", 22) if sys.platform == "linux" else None


def open_fasta(path: str | Path):
    """Open a FASTA (plain or bgzip) with pyfaidx; InputError if it is missing or bad.

    Builds the ``.fai`` index when it is missing.
    """
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
    """Chromosome name -> length, in FASTA order (builds the ``.fai`` when missing)."""
    return dict(zip(*_read_index(path)[:2], strict=True))


def _read_index(path: str | Path) -> tuple[list[str], list[int], list[int], list[int],
                                           list[int], bool]:
    """The ``.fai`` columns (names, lengths, offsets, line bases, line bytes) and bgzip-ness.

    A plain FASTA's existing ``.fai`` is read here: five integer columns need no library, and
    skipping pyfaidx's import and open saves about 40 ms per process. pyfaidx builds a
    missing index (checking the line layout) and reads bgzip input.
    """
    path = Path(path)
    fai = Path(f"{path}.fai")
    compressed = False
    if path.exists():
        with open(path, "rb") as fh:
            compressed = fh.read(2) == _GZIP_MAGIC
    if compressed or not path.exists() or not fai.exists():
        fa = open_fasta(path)
        try:
            recs = list(fa.faidx.index.items())
        finally:
            fa.close()
        return ([n for n, _ in recs], [r.rlen for _, r in recs], [r.offset for _, r in recs],
                [r.lenc for _, r in recs], [r.lenb for _, r in recs], compressed)
    cols: list[list] = [[], [], [], [], []]
    with open(fai) as fh:
        for i, line in enumerate(fh, 1):
            fields = line.rstrip("\r\n").split("\t")
            try:
                name, numbers = fields[0], [int(x) for x in fields[1:5]]
                if len(numbers) != 4 or not name:
                    raise ValueError
            except ValueError:
                raise InputError(
                    "malformed FASTA index line (expected name, length, offset, line bases, "
                    "line bytes)", path=str(fai), line=i,
                    fix="delete the .fai file; it is rebuilt from the FASTA",
                ) from None
            for col, value in zip(cols, [name, *numbers], strict=True):
                col.append(value)
    if len(set(cols[0])) != len(cols[0]):
        raise InputError("duplicate sequence names in the FASTA index", path=str(fai),
                         fix="give every FASTA record a unique name, then delete the .fai")
    return (*cols, False)


class Genome:
    """Random access to windows of one genome FASTA, as codes.

    Use as a context manager (``with Genome(path) as g: codes = g.read_codes(...)``), or call
    :meth:`close`.

    Attributes
    ----------
    path : Path
    lengths : dict[str, int]
        Chromosome name -> length, in FASTA order.
    compressed : bool
        True for bgzip input, which is read through pyfaidx one window at a time.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        names, lengths, offsets, line_bases, line_bytes, self.compressed = _read_index(path)
        self.lengths = dict(zip(names, lengths, strict=True))
        self._names = names
        self._row_of = {name: i for i, name in enumerate(names)}
        self._length = np.array(lengths, dtype=np.int64)
        self._offset = np.array(offsets, dtype=np.int64)
        self._line_bases = np.maximum(np.array(line_bases, dtype=np.int64), 1)
        self._line_bytes = np.maximum(np.array(line_bytes, dtype=np.int64), 1)
        self._fa = self._mm = None
        self._populate = _POPULATE
        # reused across reads: fresh pages cost about as much as the copy into them
        self._segment = np.empty(0, dtype=np.uint8)
        if self.compressed:  # open_fasta refuses plain gzip, so this is bgzip
            self._fa = open_fasta(self.path)
            return
        self._size = os.path.getsize(self.path)
        self._bytes = np.zeros(0, dtype=np.uint8)
        if self._size:
            with open(self.path, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._bytes = np.frombuffer(self._mm, dtype=np.uint8)

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Unmap the file (or close pyfaidx's handle) and free the buffer. Idempotent."""
        self._bytes = self._segment = np.empty(0, dtype=np.uint8)
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fa is not None:
            self._fa.close()
            self._fa = None

    def check_windows(
        self, chroms: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Validate windows; return ``(records, starts, L)``.

        ``records`` is ``(N,)`` int64, the position of each window's chromosome in the FASTA;
        ``starts`` is ``(N,)`` int64. Raises InputError for a chromosome that is not in the
        FASTA or a window outside its chromosome, ValueError for windows of unequal length.
        """
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        if len(starts) == 0:
            return np.zeros(0, dtype=np.int64), starts, 0
        width = int(ends[0] - starts[0])
        if width < 0:
            raise ValueError(f"window end {ends[0]} is before its start {starts[0]}")
        if np.any(ends - starts != width):
            raise ValueError("windows must all have the same length "
                             f"(the first is {width} bp)")
        chroms = np.asarray(chroms)
        # one lookup per run of equal names (callers sort, so runs are long)
        heads = np.flatnonzero(np.concatenate([[True], chroms[1:] != chroms[:-1]]))
        try:
            records = np.repeat(np.array([self._row_of[c] for c in chroms[heads].tolist()],
                                         dtype=np.int64), np.diff(np.append(heads, len(chroms))))
        except KeyError as err:
            known = ", ".join(self._names[:5]) + (", ..." if len(self._names) > 5 else "")
            raise InputError(
                f"chromosome '{err.args[0]}' is not in the genome FASTA (it has {known})",
                path=str(self.path),
                fix="use the genome the regions were made from, or rerun prepare_regions "
                    "with this one",
            ) from None
        bad = np.flatnonzero((starts < 0) | (ends > self._length[records]))
        if len(bad):
            i = int(bad[0])
            c = self._names[records[i]]
            raise InputError(
                f"window {c}:{starts[i]}-{ends[i]} is outside chromosome '{c}' "
                f"(length {self._length[records[i]]}; {len(bad)} such windows)",
                path=str(self.path),
                fix="use the genome the regions were made from, or rerun prepare_regions "
                    "with this one",
            )
        return records, starts, width

    def read_codes(
        self, chroms: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> np.ndarray:
        """Codes of windows ``[starts, ends)`` on ``chroms``, ``(N, L)`` uint8, in input order.

        Any order works; windows sorted by position are read in fewer, longer calls.
        """
        records, starts, width = self.check_windows(chroms, starts, ends)
        if self.compressed:
            return self._read_pyfaidx(records, starts, width)
        return self._read_plain(records, starts, width)

    def _read_pyfaidx(self, records: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
        out = np.empty((len(starts), width), dtype=np.uint8)
        for j, (r, s) in enumerate(zip(records.tolist(), starts.tolist(), strict=True)):
            out[j] = encode(self._fa.faidx.fetch(self._names[r], s + 1, s + width))
        return out

    def _read_plain(self, records: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
        n = len(starts)
        out = np.empty((n, width), dtype=np.uint8)
        if n == 0 or width == 0:
            return out
        lb, lB = self._line_bases[records], self._line_bytes[records]
        line, phase = np.divmod(starts, lb)
        first = self._offset[records] + line * lB + phase  # file byte of each first base
        order = np.argsort(first, kind="stable")
        first = first[order]
        # groups: one line layout, one SPAN_BYTES bin of the file (resident pages), and one
        # chromosome where it has many windows (small contigs share a group, one pass each)
        rec = records[order]
        new_rec = np.flatnonzero(np.diff(rec) != 0) + 1
        run_len = np.diff(np.concatenate([[0], new_rec, [n]]))
        big = run_len >= MIN_RUN
        span_bin = (first - first[0]) // SPAN_BYTES
        cut = np.union1d(
            new_rec[big[:-1] | big[1:]],
            np.flatnonzero((np.diff(lb[order]) != 0) | (np.diff(lB[order]) != 0)
                           | (np.diff(span_bin) != 0)) + 1,
        ).tolist()
        in_order = bool(np.all(order[1:] > order[:-1]))
        for a, b in zip([0, *cut], [*cut, n], strict=True):
            sel = slice(a, b) if in_order else order[a:b]
            g_lb, g_lB = int(lb[order[a]]), int(lB[order[a]])
            span = int(first[b - 1] - first[a]) + width * g_lB // g_lb
            lo, hi = int(first[a]) - g_lB, int(first[b - 1]) + (width // g_lb + 2) * g_lB
            self._map(lo, hi)
            if rec[a] == rec[b - 1] and span <= DENSE_SPAN_FACTOR * (b - a) * width:
                self._read_segment(int(rec[a]), starts[sel], width, out, sel)
            else:
                self._read_rows(g_lb, g_lB, first[a:b], phase[sel], width, out, sel)
            self._unmap(lo, hi)
        return out

    def _read_segment(self, rec: int, starts: np.ndarray, width: int, out: np.ndarray,
                      sel: slice | np.ndarray) -> None:
        """Dense windows of one chromosome: encode the stretch they cover once, then slice.

        ``starts`` are the windows' starts, sorted; their codes go to ``out[sel]``.
        """
        lb, lB = int(self._line_bases[rec]), int(self._line_bytes[rec])
        off, length = int(self._offset[rec]), int(self._length[rec])
        line0 = int(starts[0]) // lb
        line1 = -(-(int(starts[-1]) + width) // lb)  # one past the last line needed
        full = length // lb  # lines with lb bases; a last, shorter line has index ``full``
        need = min(length, line1 * lb) - line0 * lb
        if len(self._segment) < need:
            self._segment = np.empty(need, dtype=np.uint8)
        seg = self._segment[:need]
        raw = self._bytes[off + line0 * lB: off + line1 * lB]
        step = max(1, _BLOCK // lB)
        pos = 0
        for l0 in range(0, min(line1, full) - line0, step):
            l1 = min(min(line1, full) - line0, l0 + step)
            lines = raw[l0 * lB: l1 * lB].reshape(l1 - l0, lB)[:, :lb]
            k = (l1 - l0) * lb
            seg[pos:pos + k] = np.frombuffer(lines.tobytes().translate(_TABLE), dtype=np.uint8)
            pos += k
        if pos < len(seg):  # the chromosome's last, shorter line
            tail = raw[(full - line0) * lB: (full - line0) * lB + len(seg) - pos]
            seg[pos:] = np.frombuffer(tail.tobytes().translate(_TABLE), dtype=np.uint8)
        windows = sliding_window_view(seg, width)
        rel = starts - line0 * lb
        step = max(1, ROW_BYTES // width)  # batches keep the fancy-index temporary in cache
        for lo in range(0, len(rel), step):  # (np.take would copy the whole window view)
            hi = min(len(rel), lo + step)
            rows = slice(sel.start + lo, sel.start + hi) if isinstance(sel, slice) else sel[lo:hi]
            out[rows] = windows[rel[lo:hi]]

    def _read_rows(self, lb: int, lB: int, first: np.ndarray, phase: np.ndarray, width: int,
                   out: np.ndarray, sel: slice | np.ndarray) -> None:
        """Sparse windows of one line layout: gather each window's bytes as one row.

        ``first`` is the file byte of each window's first base (sorted), ``phase`` its column
        in its line; codes go to ``out[sel]``. Works in batches of ``ROW_BYTES`` so every
        temporary stays in cache.
        """
        whole_lines = lb < width
        if whole_lines:  # rows of whole lines, from the line of the first base
            n_lines = -(-(lb - 1 + width) // lb)
            row = n_lines * lB
            first = first - phase
        else:  # rows from the first base; at most one line end inside
            row = width + lB - lb
        step = max(1, ROW_BYTES // row)
        for lo in range(0, len(first), step):
            hi = min(len(first), lo + step)
            raw = self._gather(first[lo:hi], row)
            if whole_lines:
                bases = _drop_line_ends(raw, n_lines, lb, lB, phase[lo:hi], width)
            else:
                bases = _join_two_lines(raw, lb, lB, phase[lo:hi], width)
            if isinstance(sel, slice):
                _translate(bases, out[sel.start + lo:sel.start + hi])
            else:
                out[sel[lo:hi]] = _translate(bases, np.empty_like(bases))

    def _gather(self, offsets: np.ndarray, row: int) -> np.ndarray:
        """File bytes ``[o, o + row)`` for each offset, ``(n, row)`` uint8 (zeros past EOF)."""
        size = self._size
        near_end = offsets + row > size
        if not near_end.any():
            return sliding_window_view(self._bytes, row)[offsets]
        out = np.zeros((len(offsets), row), dtype=np.uint8)
        keep = ~near_end
        if keep.any():
            out[keep] = sliding_window_view(self._bytes, row)[offsets[keep]]
        k = min(size, row)
        tail = np.zeros(k + row, dtype=np.uint8)
        tail[:k] = self._bytes[size - k:]
        out[near_end] = sliding_window_view(tail, row)[offsets[near_end] - (size - k)]
        return out

    def _page_range(self, lo: int, hi: int) -> tuple[int, int]:
        lo = max(0, lo) // mmap.PAGESIZE * mmap.PAGESIZE
        return lo, max(0, min(self._size, hi) - lo)

    def _map(self, lo: int, hi: int) -> None:
        """Map the pages of file bytes ``[lo, hi)`` in one call where the kernel can.

        A page fault per page cost about 10x the page's copy on the 2-core VM this was
        measured on (4 MiB: 5-14 ms faulted, 0.3 ms with MADV_POPULATE_READ). Older kernels
        refuse the call; the pages are then faulted in as they are read.
        """
        if self._populate is None:
            return
        start, length = self._page_range(lo, hi)
        try:
            if length:
                self._mm.madvise(self._populate, start, length)
        except OSError:
            self._populate = None

    def _unmap(self, lo: int, hi: int) -> None:
        """Drop this process's mapping of the pages of ``[lo, hi)`` (they stay in the page
        cache), so resident memory is one group's span, not the genome."""
        start, length = self._page_range(lo - _AROUND, hi + _AROUND)
        if length and hasattr(mmap, "MADV_DONTNEED"):  # not on Windows
            self._mm.madvise(mmap.MADV_DONTNEED, start, length)


def _drop_line_ends(raw: np.ndarray, n_lines: int, lb: int, lB: int, phase: np.ndarray,
                    width: int) -> np.ndarray:
    """Rows of whole lines ``(n, n_lines * lB)`` -> windows ``(n, width)`` of bases."""
    n = len(raw)
    bases = raw.reshape(n, n_lines, lB)[:, :, :lb].reshape(n * n_lines * lb)  # one copy
    return sliding_window_view(bases, width)[np.arange(n) * (n_lines * lb) + phase]


def _join_two_lines(raw: np.ndarray, lb: int, lB: int, phase: np.ndarray,
                    width: int) -> np.ndarray:
    """Rows from each first base ``(n, width + lB - lb)``, at most one line end inside."""
    gap = lB - lb
    if gap == 0:
        return raw[:, :width]
    bases = raw[:, :width].copy()
    split = lb - phase  # column of the first base on the next line
    cross = np.flatnonzero(split < width)
    if len(cross):
        after = np.arange(width) >= split[cross, None]
        bases[cross] = np.where(after, raw[cross, gap:], bases[cross])
    return bases


def _translate(bases: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Bytes ``(n, L)`` -> codes in ``out`` (C-contiguous ``(n, L)`` uint8), as ``encode``."""
    src, dst = np.ascontiguousarray(bases).reshape(-1), out.reshape(-1)
    for i in range(0, src.size, _BLOCK):
        dst[i:i + _BLOCK] = np.frombuffer(src[i:i + _BLOCK].tobytes().translate(_TABLE),
                                          dtype=np.uint8)
    return out
