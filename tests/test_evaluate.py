"""Tests of peak2motif.evaluate: metrics, strand averaging, outputs."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from peak2motif.config import with_defaults
from peak2motif.evaluate import evaluate_fold, predict_split, split_metrics, summarize_evaluation
from peak2motif.model import build_model
from peak2motif.sequences import one_hot
from peak2motif.splitfiles import read_split
from peak2motif.train import save_model
from training_fixtures import make_splits


def metric(rows, task, name):
    return next(r["value"] for r in rows if r["task"] == task and r["metric"] == name)


def test_classification_metrics():
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], np.float32)
    preds = np.array([[0.9, 0.2], [0.8, 0.1], [0.1, 0.3], [0.2, 0.05]], np.float32)
    rows = split_metrics(labels, preds, ["a", "b"], "multitask")
    assert metric(rows, "a", "auroc") == 1.0 and metric(rows, "a", "auprc") == 1.0
    assert metric(rows, "b", "auroc") == 0.0  # perfectly wrong
    assert metric(rows, "a", "positive_fraction") == 0.5
    assert {r["metric"] for r in rows} == {"auroc", "auprc", "positive_fraction", "n"}


def test_regression_metrics():
    y = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    p = np.array([[1.0], [2.5], [2.9], [5.0]], np.float32)
    rows = split_metrics(y, p, ["signal"], "regression")
    assert metric(rows, "signal", "spearman") == pytest.approx(1.0)
    assert metric(rows, "signal", "pearson") == pytest.approx(np.corrcoef(y[:, 0], p[:, 0])[0, 1])
    assert metric(rows, "signal", "mse") == pytest.approx(np.mean((y - p) ** 2))


def test_regression_reports_peaks_only_metrics_too():
    """Issue 8: the negatives' zero signal inflates the correlation; peaks-only is separate."""
    rng = np.random.default_rng(0)
    peaks = rng.normal(3, 1, 200)
    y = np.concatenate([peaks, np.zeros(200)])[:, None]
    p = np.concatenate([peaks + rng.normal(0, 1.5, 200), rng.normal(0.3, 0.3, 200)])[:, None]
    is_peak = np.arange(400) < 200
    rows = split_metrics(y, p, ["signal"], "regression", is_peak)
    assert metric(rows, "signal", "pearson") > metric(rows, "signal", "pearson_peaks") + 0.2
    assert metric(rows, "signal", "pearson_peaks") == pytest.approx(
        np.corrcoef(y[:200, 0], p[:200, 0])[0, 1])


def test_single_class_split_gives_nan_not_a_crash():
    preds = np.linspace(0, 1, 5)[:, None]
    rows = split_metrics(np.zeros((5, 1), np.float32), preds, ["t"], "binary")
    assert np.isnan(metric(rows, "t", "auroc"))


def test_strand_averaged_predictions(tmp_path):
    paths = make_splits(tmp_path, n=(10, 10, 10), length=30)
    model = build_model(with_defaults("model", {
        "conv_blocks": [{"filters": 4, "kernel_size": 5, "pool_size": 2}],
        "dense_blocks": []}), 30, 1, "binary", seed=1)
    x = one_hot(read_split(paths["test"]).codes)
    fwd = keras.ops.convert_to_numpy(model(x))
    rev = keras.ops.convert_to_numpy(model(x[:, ::-1, ::-1]))
    np.testing.assert_allclose(predict_split(model, paths["test"], 4, average_strands=False),
                               fwd, rtol=1e-5)
    np.testing.assert_allclose(predict_split(model, paths["test"], 4), (fwd + rev) / 2,
                               rtol=1e-5)
    assert not np.allclose(fwd, rev)


def test_folds_are_scored_and_pooled(tmp_path):
    tasks = ["gata", "other"]
    folds = []
    for k in range(2):
        paths = make_splits(tmp_path / f"f{k}", "multitask", n=(10, 40, 40), length=30,
                            seed=k)
        model = build_model(with_defaults("model", {
            "conv_blocks": [{"filters": 4, "kernel_size": 5, "pool_size": 2}]}), 30, 2,
            "multitask", seed=k)
        save_model(model, tmp_path / f"m{k}.keras", tmp_path / f"m{k}.h5")
        folds.append(paths)
    n = max(int(read_split(p["test"]).region_index.max()) for p in folds) + 1
    regions = pd.DataFrame({"chrom": "c", "start": np.arange(n) * 100,
                            "end": np.arange(n) * 100 + 30, "name": "r", "kind": "peak",
                            "unit": "c", "split_0": "test", "gata": 1.0, "other": 0.0})
    regions.to_csv(tmp_path / "regions.tsv", sep="\t", index=False)
    out = []
    for k, paths in enumerate(folds):
        evaluate_fold(tmp_path / f"m{k}.keras", paths, tmp_path / "regions.tsv",
                      tmp_path / f"metrics{k}.tsv", tmp_path / f"pred{k}.tsv", fold=k)
        out.append((tmp_path / f"metrics{k}.tsv", tmp_path / f"pred{k}.tsv"))
        pd.DataFrame({"epoch": [1, 2], "loss": [0.7, 0.6], "val_loss": [0.7, 0.65],
                      "auroc": [0.5, 0.6], "val_auroc": [0.5, 0.55],
                      "learning_rate": [0.01, 0.01]}).to_csv(tmp_path / f"h{k}.tsv", sep="\t",
                                                              index=False)
    files = {k: tmp_path / f"out_{k}" for k in ("tsv", "html", "curves", "hist")}
    metrics = summarize_evaluation([m for m, _ in out], [p for _, p in out],
                                   [tmp_path / "h0.tsv", tmp_path / "h1.tsv"],
                                   tmp_path / "regions.tsv", "multitask", files["tsv"],
                                   files["html"], files["curves"], files["hist"])
    table = pd.read_csv(files["tsv"], sep="\t", dtype={"fold": str})
    assert list(table.columns) == ["task", "split", "fold", "metric", "value"]
    assert set(table.fold) == {"0", "1", "pooled"} and set(table.task) == set(tasks)
    pooled_n = table[(table.fold == "pooled") & (table.metric == "n")].value.iloc[0]
    per_fold_n = table[(table.fold != "pooled") & (table.split == "test")
                       & (table.metric == "n") & (table.task == "gata")].value.sum()
    assert pooled_n == per_fold_n  # pooled = every fold's test split, each once
    assert {"auroc", "auprc", "positive_fraction"} <= set(metrics.metric)
    for png in (files["curves"], files["hist"]):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pooled" in files["html"].read_text()
