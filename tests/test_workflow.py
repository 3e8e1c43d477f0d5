"""The workflow as a whole: the DAG resolves, and lint and format checks are clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_snakemake

BIN = Path(sys.executable).parent


@pytest.fixture
def demo_workdir(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    return tmp_path


def test_dry_run_of_the_demo_plans_every_stage(demo_workdir):
    out = run_snakemake(demo_workdir, "-n", "--cores", "2", "--quiet", "rules").stdout
    for rule in ("simulate_demo", "prepare_regions", "extract_sequences", "all"):
        assert rule in out, out


def test_own_configfile_replaces_the_demo(demo_workdir):
    (demo_workdir / "g.fa").write_text(">chr1\nACGT\n")
    (demo_workdir / "p.bed").write_text("chr1\t0\t2\n")
    (demo_workdir / "my.yaml").write_text(
        "datasets:\n  mine:\n    genome: g.fa\n    peaks: p.bed\n"
    )
    proc = run_snakemake(
        demo_workdir, "-n", "--cores", "1", "--printshellcmds",
        configfile=demo_workdir / "my.yaml",
    )
    text = proc.stdout + proc.stderr
    assert "results/mine/" in text
    assert "results/demo/" not in text and "simulate_demo" not in text


def test_lint_is_clean():
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--lint", "--cores", "1"],
        cwd=REPO, capture_output=True, text=True,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "Lints for" not in text, text


def test_snakefmt_is_clean():
    proc = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "rules"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    proc = subprocess.run(
        [str(BIN / "ruff"), "check", "scripts", "tests", "bench"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
