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
    position. Working memory is about 3 bytes per base of the output.

    deeplift's algorithm, per run: for each base present (in sorted order) the list of
    positions that follow one of its occurrences (the last position excluded); for each
    shuffle, every list is permuted in place except its last element (``rng.permutation``),
    the permutation composing with the previous shuffle's; the walk starts at the run's first
    base and repeatedly moves to the next unused entry of the current base's list.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    out = np.repeat(codes[:, None], n, axis=1)
    rngs = iter(rngs)
    for lo in range(0, len(codes), SHUFFLE_BLOCK):  # bounds the working memory
        _shuffle_block(codes[lo:lo + SHUFFLE_BLOCK], rngs, n, out[lo:lo + SHUFFLE_BLOCK], lo)
    return out


# Rows shuffled together: enough walks for NumPy's steps to pay, little working memory (about
# 3 bytes per base of their shuffles: 15 MB at 1 kb with 10 shuffles).
SHUFFLE_BLOCK = 512


def _shuffle_block(codes: np.ndarray, rngs, n: int, out: np.ndarray, first: int) -> None:
    """:func:`dinuc_shuffles` of one block of rows into ``out`` (``first``: its first row)."""
    rows = len(codes)
    runs = [_runs(row) for row in codes]
    units = [(r, a, b) for r in range(rows) for a, b in runs[r]]
    sizes = np.array([b - a for _, a, b in units], dtype=np.int64)
    # units in order of decreasing length (slot), so that the walks still going are a prefix
    by_length = np.argsort(-sizes, kind="stable")
    slot = np.empty(len(units), np.int64)
    slot[by_length] = np.arange(len(units))
    width = int(sizes.max()) if len(units) else 1
    tokens = np.zeros((len(units), width), np.uint8)
    offsets = np.zeros((len(units), 4), np.int32)
    lists = np.zeros((len(units) * n, max(width - 1, 1)),
                     np.int16 if width <= np.iinfo(np.int16).max else np.int32)
    chars_of = [None] * len(units)
    u = 0
    for r in range(rows):
        rng = next(rngs, None)
        if rng is None:
            raise ValueError(f"more sequences than random generators (only {first + r})")
        for a, b in runs[r]:
            s = slot[u]
            chars_of[s], tok = np.unique(codes[r, a:b], return_inverse=True)
            follows = tok[:-1]
            cur = np.argsort(follows, kind="stable") + 1  # positions grouped by base, in order
            counts = np.bincount(follows, minlength=len(chars_of[s]))
            off = np.concatenate([[0], np.cumsum(counts)[:-1]])
            tokens[s, :b - a], offsets[s, :len(off)] = tok, off
            # rng.shuffle of a list's view permutes it as deeplift's x[rng.permutation(k - 1)]
            # does, with the same draws; lists of 0 or 1 movable entries draw nothing
            views = [cur[o:o + k - 1] for o, k in zip(off.tolist(), counts.tolist(),
                                                      strict=True) if k > 2]
            for i in range(n):
                for view in views:
                    rng.shuffle(view)
                lists[s * n + i, :b - a - 1] = cur
            u += 1
    if units:
        walks = _walk(tokens, offsets, lists, np.repeat(sizes[by_length], n), n)
        for (r, a, b), s in zip(units, slot.tolist(), strict=True):
            out[r, :, a:b] = chars_of[s][walks[s * n:(s + 1) * n, :b - a]]


# Below this many walks, walking each in Python is faster than NumPy steps over all of them.
BATCHED_WALKS = 64


def _walk(tokens, offsets, lists, sizes, n: int) -> np.ndarray:
    """The walks of :func:`dinuc_shuffles`: ``(walks, width)`` tokens, walk ``w`` being
    shuffle ``w % n`` of unit ``w // n``; ``sizes`` (non-increasing) their lengths."""
    count, width = len(sizes), tokens.shape[1]
    result = np.zeros((count, width), np.uint8)
    if count < BATCHED_WALKS:
        for w, size in enumerate(sizes.tolist()):
            tok, off = tokens[w // n].tolist(), offsets[w // n].tolist()
            nxt, used, at = lists[w].tolist(), [0, 0, 0, 0], 0
            walk = [tok[0]]
            for _ in range(size - 1):
                t = tok[at]
                at = nxt[off[t] + used[t]]
                used[t] += 1
                walk.append(tok[at])
            result[w, :size] = walk
        return result
    # flat views: walk w reads unit w // n's tokens and offsets and its own list and counters
    unit = np.arange(count) // n
    tokens_f, offsets_f, lists_f = tokens.ravel(), offsets.ravel(), lists.ravel()
    t_base, o_base = unit * width, unit * 4
    l_base, u_base = np.arange(count) * lists.shape[1], np.arange(count) * 4
    used = np.zeros(count * 4, np.int64)
    at = np.zeros(count, np.int64)  # position of each walk's current base in its run
    result[:, 0] = tokens_f[t_base]
    active = np.searchsorted(-sizes, -np.arange(width), side="left")  # walks with sizes > j
    for j in range(1, width):
        k = active[j]
        t = tokens_f[t_base[:k] + at[:k]]
        counter = u_base[:k] + t
        nxt = lists_f[l_base[:k] + offsets_f[o_base[:k] + t] + used[counter]]
        used[counter] += 1
        at[:k] = nxt
        result[:k, j] = tokens_f[t_base[:k] + nxt]
    return result


def reverse_complement(x: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot ``(..., L, 4)``."""
    return x[..., ::-1, ::-1]
