"""Cluster resources from measurement (peak2motif.resources)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from peak2motif import resources

REPO = Path(__file__).resolve().parents[1]


def test_costs_are_the_lines_bench_scale_fitted():
    """The coefficients are the fit written by bench/scale.py, not numbers typed in."""
    fit = pd.read_csv(REPO / "bench" / "results" / "scale_fit.tsv", sep="\t").set_index("rule")
    assert set(resources.COSTS) == set(fit.index)
    for rule, coefs in resources.COSTS.items():
        row = fit.loc[rule]
        expected = (row.mem_fixed_mb, row.mem_per_input_mb, row.s_fixed, row.s_per_input_mb)
        assert coefs == pytest.approx(expected, abs=1e-9), rule


@pytest.mark.parametrize("rule", sorted(resources.COSTS))
def test_requests_grow_with_input_and_attempt(rule):
    small, large = resources.estimate(rule, 1.0), resources.estimate(rule, 5000.0)
    assert small[0] >= resources.MIN_MEM_MB and small[1] >= resources.MIN_RUNTIME
    assert large[0] >= small[0] and large[1] >= small[1]
    retry = resources.estimate(rule, 5000.0, attempt=2)
    assert retry[0] >= 2 * large[0] - 500 and retry[1] == pytest.approx(2 * large[1], abs=1)
    assert small[0] % 500 == 0


def test_estimate_covers_the_measured_peak_with_a_margin():
    """At every measured size the request is at least the measured peak RSS x the margin."""
    stages = pd.read_csv(REPO / "bench" / "results" / "scale_stages.tsv", sep="\t")
    for row in stages.itertuples():
        mem, minutes = resources.estimate(row.rule, row.input_mb,
                                          time_input_mb=row.time_input_mb)
        assert mem >= row.max_rss_mb, (row.rule, row.peaks, mem, row.max_rss_mb)
        assert minutes * 60 >= row.s, (row.rule, row.peaks, minutes, row.s)
