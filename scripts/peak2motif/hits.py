"""Where a motif pattern occurs: sequence matches that carry the model's contribution.

A *hit* of a pattern is a window where (1) the sequence matches the pattern's trimmed
probability matrix (PPM) well, on either strand — its log-odds score is at least
``site_score`` of the way from the matrix's worst to its best score — and (2) the
contributions of the observed bases over the window reach ``threshold``, in the pattern's
sign. The threshold comes from the pattern's own seqlets (a low quantile of their
contributions, :func:`seqlet_threshold`), so a hit is a site the model uses about as
strongly as it uses the sites TF-MoDISco clustered.

The motif stage calls a pattern real only when its hits are enriched in the task's positives
over the matched negatives, which the same model (the fold model that never saw either)
explained: :func:`enrichment` gives the one-sided Fisher test and the ratio of hit rates.
Junk clusters (poly-A stretches from a poorly trained model, patterns from noise) occur in
negatives as often as in positives and fail it, however many seqlets they have.

Arrays: one-hot and contributions are ``(N, L, 4)``; a PPM is ``(W, 4)`` (A, C, G, T).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

HIT_COLUMNS = ["sequence", "start", "end", "strand", "site_score", "contribution"]


def log_odds(ppm: np.ndarray, background: np.ndarray, pseudocount: float = 0.01
             ) -> np.ndarray:
    """Log2-odds ``(W, 4)`` of a PPM against a base composition ``(4,)``."""
    p = (np.asarray(ppm, dtype=np.float64) + pseudocount)
    p /= p.sum(1, keepdims=True)
    return np.log2(p / np.asarray(background, dtype=np.float64))


def base_composition(onehot: np.ndarray) -> np.ndarray:
    """Fraction of A, C, G, T among the called bases of ``(N, L, 4)`` (uniform if none)."""
    counts = onehot.reshape(-1, 4).sum(0).astype(np.float64) + 1.0
    return counts / counts.sum()


@dataclass
class Scan:
    """Best-strand relative site scores and window contributions, both ``(N, L - W + 1)``,
    and the strand of each best score (True: reverse)."""

    site_score: np.ndarray
    contribution: np.ndarray
    reverse: np.ndarray


def scan(ppm: np.ndarray, onehot: np.ndarray, actual: np.ndarray, background: np.ndarray,
         chunk: int = 512) -> Scan:
    """Score every window of every sequence against the pattern.

    Parameters
    ----------
    ppm
        ``(W, 4)`` trimmed PPM of the pattern.
    onehot, actual
        ``(N, L, 4)`` sequences and contributions of the observed bases (hypothetical x
        one-hot).
    background
        ``(4,)`` base composition for the log-odds.

    Returns
    -------
    :class:`Scan`; ``site_score`` is 0 at the matrix's worst and 1 at its best possible score.
    """
    lo = log_odds(ppm, background)
    w = len(lo)
    worst, best = lo.min(1).sum(), lo.max(1).sum()
    n, length, _ = onehot.shape
    m = max(length - w + 1, 0)
    site = np.zeros((n, m), dtype=np.float32)
    contrib = np.zeros((n, m), dtype=np.float32)
    reverse = np.zeros((n, m), dtype=bool)
    if m == 0:
        return Scan(site, contrib, reverse)
    rc = lo[::-1, ::-1]
    for a in range(0, n, chunk):
        x = sliding_window_view(onehot[a:a + chunk], w, axis=1)  # (n, m, 4, W)
        fwd = np.einsum("nmbw,wb->nm", x, lo, optimize=True)
        rev = np.einsum("nmbw,wb->nm", x, rc, optimize=True)
        reverse[a:a + chunk] = rev > fwd
        site[a:a + chunk] = (np.maximum(fwd, rev) - worst) / (best - worst)
        per_base = actual[a:a + chunk].sum(-1)
        csum = np.concatenate([np.zeros((len(per_base), 1)), np.cumsum(per_base, 1)], 1)
        contrib[a:a + chunk] = csum[:, w:] - csum[:, :-w]
    return Scan(site, contrib, reverse)


def seqlet_threshold(actual: np.ndarray, rows: np.ndarray, starts: np.ndarray, width: int,
                     sign: int, quantile: float) -> float:
    """The contribution a hit needs: a low quantile of the seqlets' own window sums.

    Parameters
    ----------
    actual
        ``(N, L, 4)`` contributions of the observed bases.
    rows, starts
        ``(S,)`` the row and the window start (trimmed core, ``width`` bp) of each seqlet.
    sign
        +1: the ``quantile`` of the sums (a hit must reach it); -1: the ``1 - quantile`` of
        the (negative) sums (a hit must fall below it).
    """
    per_base = actual.sum(-1)
    idx = starts[:, None] + np.arange(width)
    inside = (idx >= 0).all(1) & (idx < actual.shape[1]).all(1)
    sums = per_base[rows[inside, None], idx[inside]].sum(1)
    if not len(sums):
        return float("inf") * sign
    return float(np.quantile(sums, quantile if sign > 0 else 1 - quantile))


def hit_mask(s: Scan, site_score: float, sign: int, threshold: float = 0.0) -> np.ndarray:
    """``(N, L - W + 1)`` bool: windows that match the sequence and whose contribution
    reaches ``threshold`` in the pattern's sign (> 0 or < 0 when the threshold is 0)."""
    strong = s.contribution * sign >= threshold * sign
    if threshold == 0:
        strong &= s.contribution * sign > 0
    return (s.site_score >= site_score) & strong


def call_hits(s: Scan, site_score: float, sign: int, width: int,
              threshold: float = 0.0) -> pd.DataFrame:
    """Non-overlapping hits (greedy by contribution magnitude) as a table of
    :data:`HIT_COLUMNS` (``sequence`` is the row of the scanned arrays)."""
    mask = hit_mask(s, site_score, sign, threshold)
    rows = []
    for i in np.flatnonzero(mask.any(1)):
        cand = np.flatnonzero(mask[i])
        taken = np.zeros(mask.shape[1] + width, dtype=bool)
        for j in cand[np.argsort(-np.abs(s.contribution[i, cand]), kind="stable")]:
            if taken[j:j + width].any():
                continue
            taken[j:j + width] = True
            rows.append((int(i), int(j), int(j + width), "-" if s.reverse[i, j] else "+",
                         float(s.site_score[i, j]), float(s.contribution[i, j])))
    return pd.DataFrame(rows, columns=HIT_COLUMNS).sort_values(
        ["sequence", "start"], kind="stable").reset_index(drop=True)


def enrichment(hit_pos: np.ndarray, hit_neg: np.ndarray, sign: int) -> dict[str, float]:
    """Are sequences with a hit more frequent among positives than negatives?

    Parameters
    ----------
    hit_pos, hit_neg
        ``(n_pos,)`` and ``(n_neg,)`` bool: does each sequence have a hit?
    sign
        +1 for a positive pattern (tested for enrichment in positives), -1 for a negative one
        (a repressive site: tested for depletion in positives).

    Returns
    -------
    ``positive_hit_fraction``, ``negative_hit_fraction``, ``enrichment`` (the ratio of the
    two rates in the tested direction, with half a count added to an empty side) and the
    one-sided Fisher ``enrichment_pvalue``.
    """
    from scipy.stats import fisher_exact

    a, n1 = int(np.sum(hit_pos)), len(hit_pos)
    b, n0 = int(np.sum(hit_neg)), len(hit_neg)
    if n1 == 0 or n0 == 0:
        return {"positive_hit_fraction": np.nan, "negative_hit_fraction": np.nan,
                "enrichment": np.nan, "enrichment_pvalue": np.nan}
    rate1, rate0 = (a + 0.5) / (n1 + 1), (b + 0.5) / (n0 + 1)
    alternative = "greater" if sign > 0 else "less"
    p = fisher_exact([[a, n1 - a], [b, n0 - b]], alternative=alternative).pvalue
    return {"positive_hit_fraction": a / n1, "negative_hit_fraction": b / n0,
            "enrichment": rate1 / rate0 if sign > 0 else rate0 / rate1,
            "enrichment_pvalue": float(p)}
