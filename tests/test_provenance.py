"""peak2motif.provenance: resolved config and software versions; CPU reproducibility."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml
from peak2motif.config import check_config, load_schema
from peak2motif.provenance import (
    COLUMNS,
    NOT_FOUND,
    collect_versions,
    dataset_config,
    python_packages,
    record_provenance,
    tool_version,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "config" / "config.schema.yaml"

def test_dataset_config_narrows_to_one_dataset_and_its_simulation():
    schema = load_schema(SCHEMA_PATH)
    config = {
        "datasets": {
            "one": {
                "genome": "resources/simA/genome.fa",
                "peaks": "resources/simA/peaks.narrowPeak",
            },
            "two": {"genome": "other.fa", "peaks": {"ctcf": "c.bed", "gata": "g.bed"}},
        },
        "simulate": {"simA": {"seed": 5}, "simB": {"seed": 6}},
        "data": {"sequence_length": 100},
    }
    one = dataset_config(config, "one", schema)
    assert list(one["datasets"]) == ["one"]
    assert list(one["simulate"]) == ["simA"]
    assert one["simulate"]["simA"]["seed"] == 5
    assert one["simulate"]["simA"]["n_peaks"] == 2000  # a default, filled in
    assert one["data"]["sequence_length"] == 100
    two = dataset_config(config, "two", schema)
    assert two["simulate"] == {}
    assert two["datasets"]["two"]["peaks"] == {"ctcf": "c.bed", "gata": "g.bed"}
    # The written config must itself be a valid config: it is how a run is reproduced.
    check_config(one, SCHEMA_PATH)
    check_config(two, SCHEMA_PATH)
    with pytest.raises(KeyError, match="three"):
        dataset_config(config, "three", schema)


def _fake_tool(tmp_path: Path, name: str, output: str) -> Path:
    exe = tmp_path / name
    exe.write_text(f"#!/bin/sh\necho '{output}'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_tool_version_parses_and_reports_missing_tools(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "faketool", "faketool v2.31.1")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert tool_version("faketool") == "2.31.1"
    assert tool_version("surely-not-a-tool-p2m") == NOT_FOUND


def test_python_packages_lists_this_environment():
    packages = dict(python_packages())
    import numpy

    assert packages["numpy"] == numpy.__version__
    assert "PyYAML" in packages or "pyyaml" in {k.lower() for k in packages}


def test_collect_versions_has_every_category(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "bedtools", "bedtools v9.9.9")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    versions = collect_versions(with_tensorflow=False)
    assert list(versions.columns) == COLUMNS
    cats = set(versions["category"])
    assert {"workflow", "python", "platform", "gpu", "tool", "package"} <= cats
    row = versions.set_index(["category", "name"])["version"]
    assert row[("tool", "bedtools")] == "9.9.9"
    assert row[("python", "python")].startswith("3.11")
    assert row[("workflow", "peak2motif")]


def test_record_provenance_writes_config_versions_and_html(tmp_path):
    schema = load_schema(SCHEMA_PATH)
    config = {"datasets": {"d": {"genome": "g.fa", "peaks": "p.bed"}}, "simulate": {}}
    resolved = dataset_config(config, "d", schema)
    out = tmp_path / "prov"
    versions = record_provenance(
        resolved, "d", out / "config.yaml", out / "versions.tsv", out / "provenance.html"
    )
    assert yaml.safe_load((out / "config.yaml").read_text()) == resolved
    table = pd.read_csv(out / "versions.tsv", sep="\t", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(table, versions.astype(str))
    tf_rows = table[table["category"] == "tensorflow"].set_index("name")["version"]
    import tensorflow as tf

    assert tf_rows["tensorflow"] == tf.__version__
    assert tf_rows["cuda_version"]  # "none" on a CPU build, a version on a CUDA build
    page = (out / "provenance.html").read_text()
    assert "<table" in page and "gc_matched" in page and tf.__version__ in page
    assert list(out.glob(".*.tmp")) == []  # atomic writes leave nothing behind


@pytest.mark.slow
def test_tiny_run_records_provenance(tiny_run):
    prov = tiny_run / "results" / "tiny" / "provenance"
    config = yaml.safe_load((prov / "config.yaml").read_text())
    tiny = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    assert config["datasets"]["tiny"]["genome"] == tiny["datasets"]["tiny"]["genome"]
    assert config["simulate"]["tiny"]["seed"] == tiny["simulate"]["tiny"]["seed"]
    check_config(config, SCHEMA_PATH)
    versions = pd.read_csv(prov / "versions.tsv", sep="\t", dtype=str)
    names = set(zip(versions["category"], versions["name"], strict=True))
    assert {("tensorflow", "tensorflow"), ("tensorflow", "cuda_version"), ("tool", "bedtools"),
            ("python", "python"), ("package", "keras")} <= names


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics_on_cpu(tiny_run, tmp_path):
    """A second run of data, training and evaluation, in a fresh directory, from the config
    that the first run recorded, must give bit-identical metrics and training history."""
    from conftest import run_snakemake

    shutil.copy(tiny_run / "results" / "tiny" / "provenance" / "config.yaml", tmp_path / "c.yaml")
    targets = ["results/tiny/evaluation/metrics.tsv", "results/tiny/folds/0/model/history.tsv",
               "results/tiny/folds/1/model/history.tsv"]
    run_snakemake(tmp_path, "--cores", "2", *targets, configfile=tmp_path / "c.yaml")
    for target in targets:
        first = (tiny_run / target).read_text()
        second = (tmp_path / target).read_text()
        assert first == second, f"{target} differs between two runs with the same seed"
    metrics = pd.read_csv(tmp_path / targets[0], sep="\t")
    assert len(metrics) > 0 and metrics["value"].notna().any()
