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
    shuffled on its own by deeplift's ``dinuc_shuffle`` algorithm with an explicit
    ``RandomState`` (``rng=0`` would silently mean unseeded); :func:`dinuc_shuffles` gives the
    very same arrays for many sequences at once. Keeping N fixed matters for references: an N
    of the input is an all-zero one-hot row, and a reference with a base there would give
    that position a contribution that ``hypothetical * onehot`` cannot show. The counts of
    dinucleotides within each run are kept, and so are the first and last base of each run.
    """
    out = dinuc_shuffles(np.asarray(codes, dtype=np.uint8)[None], [rng], 1 if n is None else n)
    return out[0, 0] if n is None else out[0]


def _runs(codes: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of A/C/G/T longer than 2 (shorter ones cannot move)."""
    bases = np.concatenate([[False], codes != N_CODE, [False]])
    starts = np.flatnonzero(~bases[:-1] & bases[1:])
    ends = np.flatnonzero(bases[:-1] & ~bases[1:])
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a > 2]


def dinuc_shuffles(codes: np.ndarray, rngs, n: int) -> np.ndarray:
    """``n`` dinucleotide shuffles of each row of ``codes`` ``(N, L)``: ``(N, n, L)`` uint8.

    Row ``i`` is shuffled with ``rngs[i]`` (an iterable of ``RandomState`` or ``Generator``,
    consumed in order), each N-free run on its own, exactly as deeplift 0.6.13's
    ``dinuc_shuffle(one_hot(run), n, rng)`` does it run after run: the same random draws in
    the same order, so the same shuffles. deeplift walks each shuffle base by base in Python
    (about 0.9 ms a sequence of 200 bp with 10 shuffles); here only the draws are per
    sequence, and the walks of all runs and shuffles advance together, one NumPy step per
    position.

    deeplift's algorithm, per run: for each base present (in sorted order) the list of
    positions that follow one of its occurrences (the last position excluded); for each
    shuffle, every list is permuted in place except its last element (``rng.permutation``),
    the permutation composing with the previous shuffle's; the walk starts at the run's first
    base and repeatedly moves to the next unused entry of the current base's list.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    rows, length = codes.shape
    out = np.repeat(codes[:, None], n, axis=1)
    units = []  # (row, start, end, chars, tokens, offsets, lists of every shuffle)
    rngs = iter(rngs)
    for row in range(rows):
        rng = next(rngs, None)
        if rng is None:
            raise ValueError(f"{rows} sequences but only {row} random generators")
        for a, b in _runs(codes[row]):
            chars, tokens = np.unique(codes[row, a:b], return_inverse=True)
            follows = tokens[:-1]
            order = np.argsort(follows, kind="stable")  # positions grouped by base, in order
            cur = order + 1
            sizes = np.bincount(follows, minlength=len(chars))
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            lists = np.empty((n, b - a - 1), dtype=np.int64)
            # rng.shuffle of a list's view permutes it as deeplift's x[rng.permutation(k - 1)]
            # does, with the same draws; lists of 0 or 1 movable entries draw nothing
            views = [cur[o:o + k - 1] for o, k in zip(offsets.tolist(), sizes.tolist(),
                                                       strict=True) if k > 2]
            for i in range(n):
                for view in views:
                    rng.shuffle(view)
                lists[i] = cur
            units.append((row, a, b, chars, tokens, offsets, lists))
    if not units:
        return out
    _walk(out, units, n)
    return out


# Below this many walks, walking each in Python is faster than NumPy steps over all of them.
BATCHED_WALKS = 64


def _walk(out: np.ndarray, units: list, n: int) -> None:
    """The walks of every (run, shuffle) of :func:`dinuc_shuffles`, all at once."""
    if len(units) * n < BATCHED_WALKS:
        for r, a, b, chars, tok, off, lst in units:
            tok, off = tok.tolist(), off.tolist()
            for i in range(n):
                nxt, used = lst[i].tolist(), [0] * len(off)
                at, walk = 0, [tok[0]]
                for _ in range(b - a - 1):
                    t = tok[at]
                    at = nxt[off[t] + used[t]]
                    used[t] += 1
                    walk.append(tok[at])
                out[r, i, a:b] = chars[walk]
        return
    units.sort(key=lambda u: u[2] - u[1], reverse=True)  # longest first: active = a prefix
    sizes = np.array([u[2] - u[1] for u in units for _ in range(n)])
    count, width = len(sizes), int(sizes[0])
    tokens = np.zeros((count, width), np.int32)
    lists = np.zeros((count, width), np.int32)
    offsets = np.zeros((count, 4), np.int32)
    for j, (_, a, b, _, tok, off, lst) in enumerate(units):
        rows = slice(j * n, (j + 1) * n)
        tokens[rows, :b - a], lists[rows, :b - a - 1] = tok, lst
        offsets[rows, :len(off)] = off
    # flat views: unit u's row starts at u * width (tokens, lists) and u * 4 (per base)
    tokens, lists, base4 = tokens.ravel(), lists.ravel(), np.arange(count) * 4
    offsets = offsets.ravel()
    row = np.arange(count) * width
    used = np.zeros(count * 4, np.int32)
    at = row.copy()  # flat position of the current base of each walk
    result = np.zeros((count, width), np.int32)
    result[:, 0] = tokens[row]
    active = np.searchsorted(-sizes, -np.arange(width), side="left")  # walks with sizes > j
    for j in range(1, width):
        k = active[j]
        slot = base4[:k] + tokens[at[:k]]
        nxt = row[:k] + lists[row[:k] + offsets[slot] + used[slot]]
        used[slot] += 1
        at[:k] = nxt
        result[:k, j] = tokens[nxt]
    for j, (r, a, b, chars, *_) in enumerate(units):
        out[r, :, a:b] = chars[result[j * n:(j + 1) * n, :b - a]]


def reverse_complement(x: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot ``(..., L, 4)``."""
    return x[..., ::-1, ::-1]
