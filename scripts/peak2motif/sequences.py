"""Sequence encodings and the on-disk format of the split arrays (the data contract).

Encodings
---------
- *codes*: ``(N, L)`` uint8, one byte per base: A=0, C=1, G=2, T=3, and 4 for N and every
  other IUPAC code (R, Y, S, W, K, M, B, D, H, V). Lower-case (soft-masked) bases are read as
  bases. Codes are what is stored on disk: four times smaller than one-hot.
- *one-hot*: ``(N, L, 4)`` float32 in the order A, C, G, T. Code 4 becomes an all-zero row,
  so an N contributes nothing to a convolution (and gets zero DeepLIFT contribution).
- Reverse complement of a one-hot array is ``x[..., ::-1, ::-1]`` because the complement of
  A, C, G, T is the reversed order T, G, C, A.

Split files ``results/NAME/sequences/{train,valid,test}.h5``
------------------------------------------------------------
- ``codes``        ``(N, L)`` uint8, chunked by rows, so training streams it from disk.
- ``labels``       ``(N, T)`` float32, one column per task.
- ``region_index`` ``(N,)`` int64: the row of each sequence in ``regions.tsv``.
- attributes: ``tasks`` (list of T task names), ``task_type`` (binary, multitask,
  multiclass or regression), ``sequence_length`` (L).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

BASES = "ACGT"
N_CODE = 4

# Byte -> code lookup table: upper and lower case ACGT map to 0..3, everything else to 4.
_LUT = np.full(256, N_CODE, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _LUT[ord(_b)] = _i
    _LUT[ord(_b.lower())] = _i
# code -> one-hot rows (code 4 -> zeros)
_ONEHOT = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])


def encode(seq: str | bytes | np.ndarray) -> np.ndarray:
    """Encode one sequence (str, bytes or uint8 byte array) as codes, shape ``(L,)`` uint8."""
    if isinstance(seq, str):
        seq = seq.encode("ascii", errors="replace")
    buf = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, bytes | bytearray) else seq
    return _LUT[buf]


def one_hot(codes: np.ndarray) -> np.ndarray:
    """Codes ``(..., L)`` -> one-hot ``(..., L, 4)`` float32."""
    return _ONEHOT[np.asarray(codes, dtype=np.uint8)]


def one_hot_seq(seq: str) -> np.ndarray:
    """One sequence string -> one-hot ``(L, 4)`` float32."""
    return one_hot(encode(seq))


def decode(codes: np.ndarray) -> str:
    """Codes ``(L,)`` -> string over ACGTN."""
    return "".join("ACGTN"[c] for c in np.asarray(codes))


def codes_from_one_hot(x: np.ndarray) -> np.ndarray:
    """One-hot ``(..., L, 4)`` -> codes ``(..., L)`` (all-zero rows -> 4)."""
    x = np.asarray(x)
    codes = x.argmax(-1).astype(np.uint8)
    codes[x.max(-1) == 0] = N_CODE
    return codes


def dinuc_shuffle_codes(
    codes: np.ndarray, rng: np.random.RandomState, n: int | None = None
) -> np.ndarray:
    """Dinucleotide-preserving shuffle of one sequence of codes ``(L,)``.

    Returns ``(L,)``, or ``(n, L)`` for ``n`` shuffles. Uses ``deeplift.dinuc_shuffle`` on
    one-hot input (its string path fails on NumPy 2) with an explicit ``RandomState``
    (``rng=0`` would silently mean unseeded). N positions are all-zero one-hot rows, which it
    treats as a fifth symbol, so N stays N. It keeps the first and last base.
    """
    from deeplift.dinuc_shuffle import dinuc_shuffle

    return codes_from_one_hot(dinuc_shuffle(one_hot(codes), n, rng))


def reverse_complement(x: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot ``(..., L, 4)``."""
    return x[..., ::-1, ::-1]


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
