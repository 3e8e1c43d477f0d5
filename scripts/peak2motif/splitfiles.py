"""The split files: the sequences of one split of one fold, streamed by training.

``results/NAME/folds/K/sequences/{train,valid,test}.h5``
-------------------------------------------------------
- ``codes``        ``(N, L)`` uint8 (see :mod:`peak2motif.sequences`), chunked by rows, so
  training streams it from disk.
- ``labels``       ``(N, T)`` float32, one column per task.
- ``region_index`` ``(N,)`` int64: the row of each sequence in ``regions.tsv``.
- attributes: ``tasks`` (list of T task names), ``task_type`` (binary, multitask,
  multiclass or regression), ``sequence_length`` (L).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np


@dataclass
class SplitData:
    codes: np.ndarray  # (N, L) uint8
    labels: np.ndarray  # (N, T) float32
    region_index: np.ndarray  # (N,) int64
    tasks: list[str]
    task_type: str

    @property
    def sequence_length(self) -> int:
        return int(self.codes.shape[1])


def write_split(
    path: str | Path,
    codes: np.ndarray,
    labels: np.ndarray,
    region_index: np.ndarray,
    tasks: list[str],
    task_type: str,
    chunk_rows: int = 1024,
) -> None:
    """Write one split file in one go (for small data and tests).

    Large data should be appended chunk by chunk with :func:`create_split` instead.
    """
    with create_split(path, codes.shape[1], tasks, task_type, chunk_rows) as h5:
        append_split(h5, codes, labels, region_index)


def create_split(
    path: str | Path, sequence_length: int, tasks: list[str], task_type: str, chunk_rows: int = 1024
) -> h5py.File:
    """Create an empty, resizable split file; fill it with :func:`append_split`."""
    h5 = h5py.File(path, "w")
    rows = max(1, chunk_rows)
    h5.create_dataset(
        "codes", shape=(0, sequence_length), maxshape=(None, sequence_length),
        dtype=np.uint8, chunks=(rows, sequence_length),
    )
    h5.create_dataset(
        "labels", shape=(0, len(tasks)), maxshape=(None, len(tasks)),
        dtype=np.float32, chunks=(rows, len(tasks)),
    )
    h5.create_dataset("region_index", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(rows,))
    h5.attrs["tasks"] = list(tasks)
    h5.attrs["task_type"] = task_type
    h5.attrs["sequence_length"] = int(sequence_length)
    return h5


def append_split(
    h5: h5py.File, codes: np.ndarray, labels: np.ndarray, region_index: np.ndarray
) -> None:
    """Append rows to a split file made by :func:`create_split`."""
    n0, n = h5["codes"].shape[0], len(codes)
    if not (len(labels) == len(region_index) == n):
        raise ValueError("codes, labels and region_index must have the same number of rows")
    for name, arr in (("codes", codes), ("labels", labels), ("region_index", region_index)):
        ds = h5[name]
        ds.resize(n0 + n, axis=0)
        ds[n0:] = arr


def read_split(path: str | Path) -> SplitData:
    """Read a whole split file into memory (training streams it instead)."""
    with h5py.File(path, "r") as h5:
        return SplitData(
            codes=h5["codes"][:],
            labels=h5["labels"][:],
            region_index=h5["region_index"][:],
            tasks=[str(t) for t in h5.attrs["tasks"]],
            task_type=str(h5.attrs["task_type"]),
        )


@dataclass
class SplitInfo:
    n: int
    sequence_length: int
    tasks: list[str]
    task_type: str
    chunk_rows: int


def split_info(path: str | os.PathLike) -> SplitInfo:
    """Shape and attributes of a split file, without reading its arrays."""
    with h5py.File(path, "r") as h5:
        codes = h5["codes"]
        return SplitInfo(
            n=int(codes.shape[0]),
            sequence_length=int(codes.shape[1]),
            tasks=[str(t) for t in h5.attrs["tasks"]],
            task_type=str(h5.attrs["task_type"]),
            chunk_rows=int(codes.chunks[0]) if codes.chunks else 1024,
        )


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """All labels of a split, ``(N, T)`` float32 (small: codes are what is streamed)."""
    with h5py.File(path, "r") as h5:
        return h5["labels"][:]


def read_region_index(path: str | os.PathLike) -> np.ndarray:
    """``(N,)`` rows of ``regions.tsv``, in file order."""
    with h5py.File(path, "r") as h5:
        return h5["region_index"][:]
