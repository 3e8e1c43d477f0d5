"""BAM records -> cut sites, streamed in file order (the BAM is coordinate-sorted).

htslib (through pysam's ``BGZFile``) decompresses the file; the fixed-layout part of each
record (BAM specification, section 4.2) is read by a numba kernel. That is hand-written on
purpose: pysam's per-read Python objects cost about 2 µs a read, several times what
decompression costs (bench/signal_io.py measures both), and no library hands out the
fields of all records as arrays. Everything a read needs here is in the fixed fields and
the CIGAR: flag, MAPQ, position, strand, reference span.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np

from peak2motif.errors import InputError

log = logging.getLogger(__name__)

# samtools flags: 4 unmapped, 8 mate unmapped, 256 secondary, 512 QC fail, 1024 duplicate
# (ENCODE's -F 1804), and 2048 supplementary (a chimeric read's second piece would count a
# second 5' end for one read).
FLAG_UNMAPPED, FLAG_MATE_UNMAPPED, FLAG_SECONDARY = 4, 8, 256
FLAG_QCFAIL, FLAG_DUPLICATE, FLAG_SUPPLEMENTARY = 512, 1024, 2048

# reasons a read is dropped, in the order of the kernel's counters
REASONS = ("unmapped", "secondary or supplementary", "QC fail", "duplicate", "MAPQ",
           "not a proper pair", "cut site off the chromosome")

CHUNK_BYTES = 1 << 24  # decompressed bytes per kernel call: memory is a few times this


@dataclass
class CutBatch:
    """Cut sites of one chromosome from one chunk of input.

    ``plus`` and ``minus`` are 0-based positions (int64, unsorted, repeats allowed) of the
    forward- and reverse-strand cut sites; every cut site still to come on ``chrom`` lies at
    or after ``final_below`` (``None``: the chromosome is complete after this batch).
    """

    chrom: str
    plus: np.ndarray
    minus: np.ndarray
    final_below: int | None


@numba.njit(cache=True, nogil=True)
def _u32(buf, i):
    return (np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8) | (np.int64(buf[i + 2]) << 16)
            | (np.int64(buf[i + 3]) << 24))


@numba.njit(cache=True, nogil=True)
def _i32(buf, i):
    v = _u32(buf, i)
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@numba.njit(cache=True, nogil=True)
def _parse_records(buf, exclude, min_mapq, proper_pairs, shift_plus, shift_minus,
                   lengths, last_ref, last_pos, ref_out, pos_out, rev_out, dropped):
    """Read whole records from ``buf``; keep the cut site of each that passes the filters.

    Returns (bytes consumed, records kept, last refID, last position, order error): the
    error is 1 when a record comes before the previous one (the file is not sorted).
    """
    off = 0
    n = 0
    size = buf.shape[0]
    while off + 4 <= size:
        block = _u32(buf, off)
        if off + 4 + block > size:
            break
        r = off + 4
        off = r + block
        ref = _i32(buf, r)
        pos = _i32(buf, r + 4)
        name_len = np.int64(buf[r + 8])
        mapq = np.int64(buf[r + 9])
        n_cigar = np.int64(buf[r + 12]) | (np.int64(buf[r + 13]) << 8)
        flag = np.int64(buf[r + 14]) | (np.int64(buf[r + 15]) << 8)
        if ref >= 0:
            if ref < last_ref or (ref == last_ref and pos < last_pos):
                return off, n, last_ref, last_pos, 1
            last_ref, last_pos = ref, pos
        if ref < 0 or flag & 4:
            dropped[0] += 1
            continue
        if flag & (256 | 2048):
            dropped[1] += 1
            continue
        if flag & 512:
            dropped[2] += 1
            continue
        if flag & exclude:
            dropped[3] += 1
            continue
        if mapq < min_mapq:
            dropped[4] += 1
            continue
        if proper_pairs and (flag & 1) and ((flag & 8) or not (flag & 2)):
            dropped[5] += 1
            continue
        if flag & 16:
            span = 0
            c = r + 32 + name_len
            for _ in range(n_cigar):
                op = _u32(buf, c)
                kind = op & 15
                # M, D, N, =, X consume the reference (a >65535-op CIGAR is stored as
                # kSmN, whose N is the reference span: still right)
                if kind == 0 or kind == 2 or kind == 3 or kind == 7 or kind == 8:
                    span += op >> 4
                c += 4
            cut = pos + max(span, 1) - 1 + shift_minus
        else:
            cut = pos + shift_plus
        if cut < 0 or cut >= lengths[ref]:
            dropped[6] += 1
            continue
        ref_out[n] = ref
        pos_out[n] = cut
        rev_out[n] = (flag & 16) != 0
        n += 1
    return off, n, last_ref, last_pos, 0


def _read_exact(fh, n: int, path: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise InputError("the file ends inside its header", path=path,
                         fix="the BAM is truncated: copy or write it again")
    return data


def read_header(fh, path: str) -> list[tuple[str, int]]:
    """Read the binary header of a BAM from an open BGZF stream; return (name, length) of
    each reference, in refID order (the stream is left at the first record)."""
    if _read_exact(fh, 4, path) != b"BAM\1":
        raise InputError("not a BAM file (no BAM magic)", path=path,
                         fix="give a BAM file (samtools view -b converts SAM)")
    (l_text,) = struct.unpack("<i", _read_exact(fh, 4, path))
    _read_exact(fh, l_text, path)
    (n_ref,) = struct.unpack("<i", _read_exact(fh, 4, path))
    refs = []
    for _ in range(n_ref):
        (l_name,) = struct.unpack("<i", _read_exact(fh, 4, path))
        name = _read_exact(fh, l_name, path)[:-1].decode()
        (length,) = struct.unpack("<i", _read_exact(fh, 4, path))
        refs.append((name, length))
    return refs


def cut_sites(path: str, sizes: dict[str, int], shifts: tuple[int, int] = (0, 0), *,
              min_mapq: int = 30, keep_duplicates: bool = False,
              proper_pairs: bool = True, stats: dict | None = None) -> Iterator[CutBatch]:
    """Stream the cut sites of a coordinate-sorted BAM, chromosome by chromosome.

    Parameters
    ----------
    sizes
        Chromosome lengths of the genome; reads on other references are skipped (and
        counted in ``stats["other_references"]``).
    shifts
        (plus, minus) added to the 5' base of forward / reverse reads.
    stats
        Filled with ``records``, ``kept``, and one count per entry of :data:`REASONS`.

    Yields
    ------
    :class:`CutBatch`, in file order; memory stays at a few chunks of ``CHUNK_BYTES``.
    """
    from pysam.libcbgzf import BGZFile

    stats = {} if stats is None else stats
    exclude = 0 if keep_duplicates else FLAG_DUPLICATE
    dropped = np.zeros(len(REASONS), dtype=np.int64)
    with BGZFile(path, "rb") as fh:
        refs = read_header(fh, path)
        names = [name for name, _ in refs]
        in_genome = np.array([name in sizes for name, _ in refs], dtype=bool)
        lengths = np.array([sizes.get(name, length) for name, length in refs], dtype=np.int64)
        cap = CHUNK_BYTES // 36 + 1  # a record is at least 36 bytes
        ref_out = np.empty(cap, dtype=np.int32)
        pos_out = np.empty(cap, dtype=np.int64)
        rev_out = np.empty(cap, dtype=np.bool_)
        last_ref, last_pos = -1, -1
        tail = b""
        kept = other = 0
        while True:
            data = fh.read(CHUNK_BYTES)
            buf = np.frombuffer(tail + data, dtype=np.uint8)
            if len(buf) == 0:
                break
            used, n, last_ref, last_pos, unsorted = _parse_records(
                buf, exclude, min_mapq, proper_pairs, shifts[0], shifts[1], lengths,
                last_ref, last_pos, ref_out, pos_out, rev_out, dropped)
            if unsorted:
                raise InputError(
                    f"the reads are not sorted by position (a read on {names[last_ref]} "
                    "comes after a later one)", path=path,
                    fix=f"sort it: samtools sort -o sorted.bam {path} && samtools index "
                    "sorted.bam, and point `signal` at sorted.bam")
            tail = bytes(buf[used:])
            if not data and used == 0:
                if tail:
                    raise InputError("the file ends inside a read record", path=path,
                                     fix="the BAM is truncated: copy or write it again")
                break
            yield from _batches(ref_out[:n], pos_out[:n], rev_out[:n], names, in_genome,
                                last_ref, last_pos + min(shifts), done=not data)
            kept_here = in_genome[ref_out[:n]].sum() if n else 0
            kept += int(kept_here)
            other += n - int(kept_here)
    stats.update(kept=kept, other_references=other)
    stats.update(zip(REASONS, map(int, dropped), strict=True))
    stats["records"] = kept + other + int(dropped.sum())
    log.info("%s: %d records, %d cut sites kept; dropped: %s", path, stats["records"], kept,
             ", ".join(f"{k} {v}" for k, v in stats.items() if k in REASONS and v))


def _batches(ref, pos, rev, names, in_genome, last_ref, frontier, done) -> Iterator[CutBatch]:
    """Split one chunk's kept reads into per-chromosome batches (refIDs are sorted)."""
    if len(ref) == 0:
        return
    bounds = np.r_[0, np.flatnonzero(np.diff(ref)) + 1, len(ref)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        r = int(ref[a])
        if not in_genome[r]:
            continue
        open_end = r == last_ref and b == len(ref) and not done
        sel = rev[a:b]
        yield CutBatch(names[r], pos[a:b][~sel].copy(), pos[a:b][sel].copy(),
                       int(frontier) if open_end else None)
