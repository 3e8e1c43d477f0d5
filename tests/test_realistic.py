"""Data nobody tuned for, at default settings, the way a new user runs it (issue 8).

Two cases of the recovery suite (bench/recovery_data.py), built from real C. elegans sequence
(ce2 chrX from a Debian package, in six pieces): ``worm_ci_1200``, 1,200 peaks with 1-3 sites
per peak sampled from four nematode JASPAR matrices of four TF families, and
``worm_ci_control_1000``, 1,000 random windows with nothing planted (2,000 sequences with the
matched negatives). The config holds only the genome, the peaks and the JASPAR taxon. The
judgement is the suite's own (bench/recovery.py: ``judge``), so CI and BENCHMARKS.md agree.
"""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from conftest import REPO

pytestmark = pytest.mark.slow
sys.path.insert(0, str(REPO / "bench"))


@pytest.fixture(scope="module")
def judged(realistic_run):
    from recovery import judge

    workdir, folder, meta = realistic_run
    return judge(workdir, folder, meta), workdir, meta


def test_every_planted_motif_is_recovered_and_nothing_else(judged):
    result, workdir, meta = judged
    table = pd.read_csv(workdir / "results" / meta["name"] / "motifs" / "motifs.tsv", sep="\t")
    assert result["recovered"] == "4/4", (result, table.to_string())
    assert result["off_target"] == 0, table.to_string()
    # off_target counts only patterns with a significant JASPAR match; a reported pattern
    # with none would pass it unseen. Measured: 0 unmatched in every recorded run of the
    # suite (bench/results/recovery_final*.tsv: 10 cases, worm_ci_1200 among them, 4
    # reported, 0 unmatched).
    assert result["unmatched"] == 0, table.to_string()


def test_the_model_and_its_contributions_are_good(judged):
    result, _, _ = judged
    # BENCHMARKS.md "Margins": seeds 0-2 and AVX2 kernels gave 0.929-0.944 and 0.890-0.916;
    # thresholds are the lowest minus the range
    assert result["test_auroc"] >= 0.91, result
    assert result["interp_auroc"] >= 0.86, result


def test_every_check_passed(judged):
    _, workdir, meta = judged
    checks = pd.read_csv(workdir / "results" / meta["name"] / "contributions" / "checks.tsv",
                         sep="\t").set_index("check")["value"]
    assert checks["summation_to_delta_max_abs_error"] < 1e-3
    assert checks["stored_summation_max_abs_error"] < 1e-3
    assert checks["shap_correlation"] >= 0.999
    assert checks["jobs"] >= 1


def test_negative_control_reports_no_motif(control_run):
    """Nothing planted: every stage runs, TF-MoDISco reports junk, and no motif is reported."""
    workdir, _, meta = control_run
    out = workdir / "results" / meta["name"] / "motifs"
    table = pd.read_csv(out / "motifs.tsv", sep="\t")
    assert table.empty, table.to_string()
    patterns = pd.read_csv(out / "patterns.tsv", sep="\t")
    assert not patterns["kept"].any()
    assert "No motif is reported" in (out / "motifs.html").read_text()
    summary = dict(pd.read_csv(workdir / "results" / meta["name"] / "sequences" / "summary.tsv",
                               sep="\t").itertuples(index=False))
    assert int(summary["positives"]) + int(summary["negatives"]) >= 2000
