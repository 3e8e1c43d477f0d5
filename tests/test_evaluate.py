"""Tests of peak2motif.evaluate: metrics, strand averaging, outputs."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from peak2motif.evaluate import predict_split, run_evaluation, split_metrics
from peak2motif.model import build_model, with_defaults
from peak2motif.sequences import one_hot, read_split
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


def test_run_evaluation_writes_long_metrics_and_plots(tmp_path):
    paths = make_splits(tmp_path, "multitask", n=(10, 40, 40), length=30)
    model = build_model(with_defaults("model", {
        "conv_blocks": [{"filters": 4, "kernel_size": 5, "pool_size": 2}]}), 30, 2,
        "multitask")
    save_model(model, tmp_path / "model.keras", tmp_path / "model.h5")
    pd.DataFrame({"epoch": [1, 2], "loss": [0.7, 0.6], "val_loss": [0.7, 0.65],
                  "auroc": [0.5, 0.6], "val_auroc": [0.5, 0.55],
                  "learning_rate": [0.01, 0.01]}).to_csv(tmp_path / "history.tsv", sep="\t",
                                                          index=False)
    out = {k: tmp_path / f"out_{k}" for k in ("tsv", "html", "curves", "hist")}
    run_evaluation(tmp_path / "model.keras", paths["valid"], paths["test"],
                   tmp_path / "history.tsv", out["tsv"], out["html"], out["curves"],
                   out["hist"])
    metrics = pd.read_csv(out["tsv"], sep="\t")
    assert list(metrics.columns) == ["task", "split", "metric", "value"]
    assert set(metrics.split) == {"valid", "test"} and set(metrics.task) == {"gata", "other"}
    assert {"auroc", "auprc", "positive_fraction"} <= set(metrics.metric)
    for png in (out["curves"], out["hist"]):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table" in out["html"].read_text()
