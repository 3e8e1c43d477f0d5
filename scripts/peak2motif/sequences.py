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

The split files are :mod:`peak2motif.splitfiles`.
"""

from __future__ import annotations

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
    """Dinucleotide-preserving shuffle of one sequence of codes ``(L,)``; N stays in place.

    Returns ``(L,)``, or ``(n, L)`` for ``n`` shuffles. Each run of A/C/G/T between N's is
    shuffled on its own with ``deeplift.dinuc_shuffle`` on one-hot input (its string path
    fails on NumPy 2) and an explicit ``RandomState`` (``rng=0`` would silently mean
    unseeded). Keeping N fixed matters for references: an N of the input is an all-zero
    one-hot row, and a reference with a base there would give that position a contribution
    that ``hypothetical * onehot`` cannot show. The counts of dinucleotides within each run
    are kept, and so are the first and last base of each run.
    """
    from deeplift.dinuc_shuffle import dinuc_shuffle

    codes = np.asarray(codes, dtype=np.uint8)
    k = 1 if n is None else n
    out = np.repeat(codes[None], k, axis=0)
    bases = np.concatenate([[False], codes != N_CODE, [False]])
    starts = np.flatnonzero(~bases[:-1] & bases[1:])
    ends = np.flatnonzero(bases[:-1] & ~bases[1:])
    for a, b in zip(starts, ends, strict=True):
        if b - a > 2:
            shuffled = dinuc_shuffle(one_hot(codes[a:b]), k, rng)
            out[:, a:b] = codes_from_one_hot(np.asarray(shuffled).reshape(k, b - a, 4))
    return out[0] if n is None else out


def reverse_complement(x: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot ``(..., L, 4)``."""
    return x[..., ::-1, ::-1]
