"""End-to-end: the attribution stage of the tiny workflow run (two folds x two shards)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pyBigWig
import pytest
from peak2motif import contributions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tiny_run):
    return tiny_run / "results" / "tiny" / "contributions"


def test_checks_pass_and_contributions_are_exact(out, tiny_run):
    checks = pd.read_csv(out / "checks.tsv", sep="\t")
    assert list(checks.columns) == ["check", "value"]
    value = checks.set_index("check")["value"]
    # native DeepLIFT: summation-to-delta at float32 round-off, on the stored arrays too
    assert value["summation_to_delta_max_abs_error"] < 1e-4
    assert value["stored_summation_max_abs_error"] < 1e-4
    assert value["logit_max_abs_diff"] < 1e-4
    assert value["shap_correlation"] >= 0.999
    assert value["reference_identical_fraction"] <= 0.05 and value["reference_moved_n"] == 0
    assert value["jobs"] == 4  # two folds x two shards
    page = (out / "checks.html").read_text()
    assert '<td><span class="pass">pass</span></td>' in page
    assert '<td><span class="FAIL">' not in page
    for fold in (0, 1):
        assert (tiny_run / f"results/tiny/folds/{fold}/contributions/crosscheck.tsv").exists()


def test_the_gathered_file_is_verified(out, tiny_run):
    """verify_contributions ran on the gathered file and its rows are in checks.tsv and on
    the checks page, next to the jobs' rows (job_checks.tsv)."""
    assert "verified" in (tiny_run / "logs/tiny/verify_contributions.log").read_text()
    value = pd.read_csv(out / "checks.tsv", sep="\t").set_index("check")["value"]
    jobs = pd.read_csv(out / "job_checks.tsv", sep="\t").set_index("check")["value"]
    assert set(jobs.index) < set(value.index)
    # what the correct tiny run reaches (limits 1e-3): float32 round-off
    assert value["verify_stored_summation_max_abs_error"] < 1e-4
    assert value["verify_logit_max_abs_diff"] < 1e-4
    assert value["verify_prediction_max_abs_diff"] < 1e-4
    assert value["verify_evaluation_max_abs_diff"] < 1e-4
    assert value["verify_hypothetical_relative_diff"] < 1e-3
    assert value["verify_nonfinite_contributions"] == 0
    # two folds' test regions, all explained; one task, a sample of 64 rows
    assert value["verify_evaluation_regions"] > 1000
    assert value["verify_sample_sequences"] == 64
    page = (out / "checks.html").read_text()
    assert "verify_hypothetical_relative_diff" in page and "verify_evaluation_max_abs_diff" in page


def test_planted_motifs_carry_the_contributions(out):
    """Interpretability AUROC (Koo & Ploenzke 2021) on the simulated truth."""
    value = pd.read_csv(out / "checks.tsv", sep="\t").set_index("check")["value"]
    # measured 0.830-0.865 over seeds and CPU kernels (bench/results/margins.tsv)
    assert value["interpretability_auroc"] >= 0.79


def test_every_peak_is_explained_once_by_the_model_that_never_saw_it(out, tiny_run):
    regions = pd.read_csv(tiny_run / "results/tiny/sequences/regions.tsv", sep="\t")
    c = contributions.read_task(out / "contributions.h5", "peaks")
    assert len(np.unique(c.region_index)) == len(c.region_index)
    peaks = regions[regions["kind"] == "peak"]
    assert set(c.region_index[c.positive]) == set(peaks.index)
    expected_negatives = 0
    for fold in (0, 1):
        rows = c.region_index[c.fold == fold]
        assert (regions.iloc[rows][f"split_{fold}"] == "test").all()
        # negatives_ratio 1: as many matched negatives as the fold's test peaks, or all of
        # its test negatives when it has fewer
        test = regions[regions[f"split_{fold}"] == "test"]
        expected_negatives += min((test["kind"] != "peak").sum(), (test["kind"] == "peak").sum())
    assert (~c.positive).sum() == expected_negatives
    assert (regions.iloc[c.region_index[~c.positive]]["kind"] != "peak").all()
    np.testing.assert_allclose(c.actual.sum((1, 2)), c.logit_delta, atol=1e-4)
    with h5py.File(out / "contributions.h5") as h5:
        assert h5.attrs["method"] == "deeplift"


def test_bigwig_track_in_genome_coordinates(out, tiny_run):
    fai = pd.read_csv(tiny_run / "resources/tiny/genome.fa.fai", sep="\t", header=None)
    bw = pyBigWig.open(str(out / "contributions.bw"))
    assert bw.chroms() == dict(zip(fai[0], fai[1], strict=True))
    regions = pd.read_csv(tiny_run / "results/tiny/sequences/regions.tsv", sep="\t")
    c = contributions.read_task(out / "contributions.h5", "peaks", positives_only=True)
    row = regions.iloc[c.region_index[0]]
    values = np.array(bw.values(row["chrom"], int(row["start"]), int(row["end"])))
    # the track holds the peak's contributions (overlapping windows are averaged)
    assert np.isfinite(values).all()
    assert np.corrcoef(values, c.actual[0].sum(-1))[0, 1] > 0.9
