"""The columns of ``regions.tsv`` (the contract is in :mod:`peak2motif.regions`), read without
pandas.

Extraction is a short job whose fixed costs are most of its time: importing pandas alone
takes longer than reading 100,000 windows from the genome (BENCHMARKS.md, "Data"). This
module reads the table with numpy and the standard library only, for the jobs that need its
columns and nothing else; :func:`peak2motif.regions.read_regions` (pandas) is for the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from peak2motif.errors import InputError

REQUIRED = ("chrom", "start", "end", "name", "kind", "unit")
FIX = "regions.tsv is written by prepare_regions; rerun that rule"
BLOCK_LINES = 65536  # lines split into field objects at a time (bounds memory)


def split_names(columns: list[str]) -> list[str]:
    """The ``split_k`` columns, in fold order."""
    cols = [c for c in columns if c.startswith("split_") and c[6:].isdigit()]
    return sorted(cols, key=lambda c: int(c[6:]))


def label_names(columns: list[str]) -> list[str]:
    """The task (label) columns: every column that is not a fixed or split column."""
    fixed = {*REQUIRED, *split_names(columns)}
    return [c for c in columns if c not in fixed]


def check_columns(columns: list[str], path: str | Path) -> None:
    """InputError naming the file when a required column or every split column is missing."""
    missing = [c for c in REQUIRED if c not in columns]
    if missing or not split_names(columns):
        raise InputError(f"missing columns {missing or ['split_0']}", path=str(path), fix=FIX)


def header(path: str | Path) -> list[str]:
    """The column names of ``regions.tsv`` (its first line)."""
    with open(path, "rb") as fh:
        first = fh.readline()
    if not first.strip():
        raise InputError("the file is empty", path=str(path), fix=FIX)
    return first.rstrip(b"\r\n").decode().split("\t")


def read_columns(path: str | Path, columns: list[str] | None = None
                 ) -> dict[str, np.ndarray]:
    """The columns of ``regions.tsv`` (every one, or those named, in file order) as numpy
    arrays: ``start`` and ``end`` int64, labels float32 (an empty field is NaN), the others
    str.

    Blocks of lines are split into fields by one ``bytes.split`` each (newlines turned into
    tabs), and each column is a strided slice of a block's fields: no Python loop over the
    lines, and only one block's field objects at a time. The field count of every line is
    checked first, with numpy over the bytes.
    """
    data = Path(path).read_bytes().replace(b"\r\n", b"\n")
    if not data.strip():
        raise InputError("the file is empty", path=str(path), fix=FIX)
    if not data.endswith(b"\n"):
        data += b"\n"
    head_end = data.index(b"\n")
    header = data[:head_end].decode().split("\t")
    check_columns(header, path)
    body = memoryview(data)[head_end + 1:]
    buf = np.frombuffer(body, dtype=np.uint8)
    seps = np.flatnonzero((buf == 9) | (buf == 10))  # every field ends at one
    newline = buf[seps] == 10
    ends = np.flatnonzero(newline)  # the fields that end a line
    per_line = np.diff(ends, prepend=-1)
    bad = np.flatnonzero(per_line != len(header))
    if len(bad):
        raise InputError(f"line {int(bad[0]) + 2} has {int(per_line[bad[0]])} fields, the "
                         f"header {len(header)}", path=str(path), fix=FIX)
    line_ends = seps[newline]  # byte offset of each line's newline
    wanted = [(k, name) for k, name in enumerate(header) if columns is None or name in columns]
    parts: dict[str, list[np.ndarray]] = {name: [] for _, name in wanted}
    lo = 0
    for first in range(0, len(line_ends), BLOCK_LINES):
        hi = int(line_ends[min(first + BLOCK_LINES, len(line_ends)) - 1]) + 1
        fields = bytes(body[lo:hi]).replace(b"\n", b"\t").split(b"\t")[:-1]
        for k, name in wanted:
            parts[name].append(np.array(fields[k::len(header)], dtype=bytes))
        lo = hi
    labels = set(label_names(header))
    out = {}
    for _, name in wanted:
        raw = np.concatenate(parts.pop(name)) if len(line_ends) else np.zeros(0, bytes)
        try:
            if name in ("start", "end"):
                out[name] = raw.astype(np.int64) if len(raw) else np.zeros(0, np.int64)
            elif name in labels:
                raw = np.where(raw == b"", b"nan", raw)
                out[name] = raw.astype(np.float32) if len(raw) else np.zeros(0, np.float32)
            else:
                out[name] = _text(raw)
        except ValueError as e:
            raise InputError(f"column {name!r} is not numeric ({e})", path=str(path),
                             fix=FIX) from None
    return out


def _text(raw: np.ndarray) -> np.ndarray:
    """bytes -> str (ASCII by a cast, which is fast; UTF-8 otherwise)."""
    try:
        return raw.astype(str)
    except UnicodeDecodeError:
        return np.char.decode(raw, "utf-8")
