"""Hits of a pattern (peak2motif.hits) and motif instances' null threshold."""

from __future__ import annotations

import numpy as np
import pytest
from peak2motif import hits
from peak2motif.sequences import encode, one_hot

PPM = np.array([[0.97, 0.01, 0.01, 0.01], [0.01, 0.01, 0.01, 0.97],   # A T
                [0.01, 0.01, 0.97, 0.01], [0.01, 0.97, 0.01, 0.01]])  # G C


def _track(seq: str, weights: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    x = one_hot(encode(seq))[None]
    actual = np.zeros_like(x)
    for pos, w in weights.items():
        actual[0, pos] = x[0, pos] * w
    return x, actual


def test_scan_finds_both_strands_and_sums_the_window():
    # ATGC at 2 (forward) and its reverse complement GCAT at 10
    x, actual = _track("CCATGCCCCCGCATCC", {2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 12: -1.0})
    s = hits.scan(PPM, x, actual, np.full(4, 0.25))
    assert s.site_score.shape == (1, 13)
    assert s.site_score[0, 2] == pytest.approx(1.0) and not s.reverse[0, 2]
    assert s.site_score[0, 10] == pytest.approx(1.0) and s.reverse[0, 10]
    assert s.contribution[0, 2] == pytest.approx(4.0)
    assert s.contribution[0, 10] == pytest.approx(-1.0)
    assert s.site_score[0, 6] < 0.5  # CCCC: one base of ATGC on either strand


def test_hits_need_the_site_and_the_contribution_in_the_pattern_sign():
    x, actual = _track("CCATGCCCCCGCATCC", {2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 12: -1.0})
    s = hits.scan(PPM, x, actual, np.full(4, 0.25))
    assert np.flatnonzero(hits.hit_mask(s, 0.9, +1)[0]).tolist() == [2]
    assert np.flatnonzero(hits.hit_mask(s, 0.9, -1)[0]).tolist() == [10]
    assert not hits.hit_mask(s, 0.9, +1, threshold=5.0).any()  # not strong enough
    table = hits.call_hits(s, 0.9, +1, width=4)
    assert table[["start", "end", "strand"]].values.tolist() == [[2, 6, "+"]]


def test_call_hits_keeps_the_strongest_of_overlapping_windows():
    x, actual = _track("ATGCATGC", {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 3.0, 5: 3.0, 6: 3.0,
                                    7: 3.0})
    s = hits.scan(PPM, x, actual, np.full(4, 0.25))
    table = hits.call_hits(s, 0.9, +1, width=4)
    assert table["start"].tolist() == [0, 4]  # non-overlapping, both kept
    assert (table["end"] - table["start"] == 4).all()


def test_seqlet_threshold_is_a_quantile_of_the_seqlets_own_sums():
    actual = np.zeros((3, 20, 4))
    actual[:, :, 0] = 1.0  # each base contributes 1
    rows, starts = np.array([0, 1, 2]), np.array([0, 5, 18])  # the last runs off the end
    assert hits.seqlet_threshold(actual, rows, starts, 4, +1, 0.1) == pytest.approx(4.0)
    assert hits.seqlet_threshold(-actual, rows, starts, 4, -1, 0.1) == pytest.approx(-4.0)


def test_enrichment_is_one_sided_in_the_pattern_sign():
    pos = np.array([True] * 40 + [False] * 60)
    neg = np.array([True] * 5 + [False] * 95)
    up = hits.enrichment(pos, neg, +1)
    assert up["positive_hit_fraction"] == 0.4 and up["negative_hit_fraction"] == 0.05
    assert up["enrichment"] > 7 and up["enrichment_pvalue"] < 1e-6
    assert hits.enrichment(pos, neg, -1)["enrichment_pvalue"] > 0.99  # not depleted
    depleted = hits.enrichment(neg, pos, -1)
    assert depleted["enrichment"] > 7 and depleted["enrichment_pvalue"] < 1e-6
    assert np.isnan(hits.enrichment(pos, neg[:0], +1)["enrichment"])


def test_instance_threshold_lets_only_the_null_fraction_of_negatives_through():
    from peak2motif.instances import null_threshold

    rng = np.random.default_rng(0)
    s = hits.Scan(site_score=np.ones((1000, 5)), contribution=rng.normal(0, 1, (1000, 5)),
                  reverse=np.zeros((1000, 5), bool))
    tau = null_threshold(s, 0.7, +1, 0.01)
    best = s.contribution.max(1)
    assert (best >= tau).mean() == pytest.approx(0.01, abs=0.002)
    none = hits.Scan(np.zeros((10, 5)), np.ones((10, 5)), np.zeros((10, 5), bool))
    assert null_threshold(none, 0.7, +1, 0.01) == 0.0  # no site in any negative
