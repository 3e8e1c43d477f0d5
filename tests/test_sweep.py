"""Tests of peak2motif.sweep: the grid, overrides, summary, selection, and a 4-point sweep."""

from __future__ import annotations

import pandas as pd
import pytest
from peak2motif.config import with_defaults
from peak2motif.errors import InputError
from peak2motif.sweep import (
    apply_overrides,
    check_point_names,
    grid_table,
    point_overrides,
    select_model,
    summarize,
    train_point,
)
from snakemake.utils import Paramspace
from training_fixtures import make_splits

GRID = {"training.optimizer.learning_rate": [0.01, 0.001], "model.conv_blocks.0.filters": [4, 8]}


def test_grid_gives_one_paramspace_point_per_combination():
    table = grid_table(GRID)
    assert list(table.columns) == ["learning_rate", "filters"] and len(table) == 4
    names = list(Paramspace(table, filename_params="*", single_wildcard="point")
                 .instance_patterns)
    assert names[0] == "learning_rate~0.01_filters~4"
    check_point_names(names)
    overrides = point_overrides(GRID)
    assert overrides[3] == {"training.optimizer.learning_rate": 0.001,
                            "model.conv_blocks.0.filters": 8}


def test_clashing_names_use_the_full_key():
    table = grid_table({"model.conv_blocks.0.filters": [1], "model.conv_blocks.1.filters": [2]})
    assert list(table.columns) == ["conv_blocks_0_filters", "conv_blocks_1_filters"]


def test_apply_overrides_sets_nested_keys_and_list_items():
    sections = {"model": with_defaults("model"), "training": with_defaults("training")}
    out = apply_overrides(sections, point_overrides(GRID)[1])
    assert out["model"]["conv_blocks"][0]["filters"] == 8
    assert out["training"]["optimizer"]["learning_rate"] == 0.01
    assert sections["model"]["conv_blocks"][0]["filters"] == 64  # the input is not changed
    with pytest.raises(InputError, match="sweep: grid: model.conv_blocks.5.filters"):
        apply_overrides(sections, {"model.conv_blocks.5.filters": 3})
    with pytest.raises(InputError, match="not a config key"):
        apply_overrides(sections, {"training.optimiser.learning_rate": 3})


def test_unsafe_point_names_are_refused():
    with pytest.raises(InputError, match="folder"):
        check_point_names(["activation~a/b"])


def _write_point(tmp_path, name, valid, test, val_loss):
    folder = tmp_path / name
    folder.mkdir()
    pd.DataFrame({"task": ["t", "t"], "split": ["valid", "test"], "metric": ["auprc", "auprc"],
                  "value": [valid, test]}).to_csv(folder / "metrics.tsv", sep="\t", index=False)
    pd.DataFrame({"epoch": [1, 2], "loss": [1, 1], "val_loss": val_loss}).to_csv(
        folder / "history.tsv", sep="\t", index=False)
    return folder


def test_selection_uses_validation_metrics_only(tmp_path):
    # point b is best on test, point a on validation: a must win
    a = _write_point(tmp_path, "a", 0.9, 0.5, [0.5, 0.4])
    b = _write_point(tmp_path, "b", 0.7, 0.99, [0.3, 0.2])
    table = summarize(["a", "b"], [{"k": 1}, {"k": 2}], [[a / "metrics.tsv"], [b / "metrics.tsv"]],
                      [[a / "history.tsv"], [b / "history.tsv"]], "auprc")
    assert table.set_index("point").selected.to_dict() == {"a": True, "b": False}
    by_loss = summarize(["a", "b"], [{}, {}], [[a / "metrics.tsv"], [b / "metrics.tsv"]],
                        [[a / "history.tsv"], [b / "history.tsv"]], "loss")
    assert by_loss.set_index("point").selected.to_dict() == {"a": False, "b": True}
    with pytest.raises(InputError, match="sweep: metric"):
        summarize(["a"], [{}], [[a / "metrics.tsv"]], [[a / "history.tsv"]], "pearson")


def test_selection_averages_over_folds(tmp_path):
    # a wins on fold 0, b on fold 1 by more: b is best on average
    a0 = _write_point(tmp_path, "a0", 0.80, 0, [0.5, 0.4])
    a1 = _write_point(tmp_path, "a1", 0.60, 0, [0.5, 0.4])
    b0 = _write_point(tmp_path, "b0", 0.75, 0, [0.5, 0.4])
    b1 = _write_point(tmp_path, "b1", 0.90, 0, [0.5, 0.4])
    table = summarize(["a", "b"], [{}, {}], [[a0 / "metrics.tsv", a1 / "metrics.tsv"],
                                             [b0 / "metrics.tsv", b1 / "metrics.tsv"]],
                      [[a0 / "history.tsv", a1 / "history.tsv"],
                       [b0 / "history.tsv", b1 / "history.tsv"]], "auprc")
    assert table.set_index("point").selected.to_dict() == {"a": False, "b": True}
    assert table.set_index("point").valid_auprc["a"] == pytest.approx(0.70)


def test_four_point_sweep_trains_and_selects(tmp_path):
    paths = make_splits(tmp_path / "data", n=(200, 80, 80), length=40)
    model_cfg = with_defaults("model", {
        "conv_blocks": [{"filters": 4, "kernel_size": 7, "pool_size": 4}],
        "dense_blocks": []})
    training = with_defaults("training", {"epochs": 1, "batch_size": 32})
    names = list(Paramspace(grid_table(GRID), filename_params="*", single_wildcard="point")
                 .instance_patterns)
    overrides = point_overrides(GRID)
    for name, over in zip(names, overrides, strict=True):
        metrics = train_point(paths["train"], paths["valid"], tmp_path / name, model_cfg,
                              training, over)
        assert set(metrics.split) == {"valid"}  # the test split is never looked at
        assert not (tmp_path / name / "checkpoint").exists()
    out = tmp_path / "selected"
    out.mkdir()
    best = select_model(
        points=names, overrides=overrides, n_folds=1,
        metrics=[tmp_path / n / "metrics.tsv" for n in names],
        histories=[tmp_path / n / "history.tsv" for n in names],
        models=[tmp_path / n / "model.keras" for n in names],
        h5s=[tmp_path / n / "model.h5" for n in names], metric="auprc",
        summary_tsv=out / "summary.tsv", summary_html=out / "summary.html",
        selected_dir=out / "models")
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert len(summary) == 4 and summary.selected.sum() == 1
    assert summary.loc[summary.selected, "point"].item() == best
    assert summary.valid_auprc.max() == summary.loc[summary.selected, "valid_auprc"].item()
    chosen = out / "models" / "0" / "model.keras"
    assert chosen.read_bytes() == (tmp_path / best / "model.keras").read_bytes()
    import keras
    assert keras.models.load_model(chosen).get_layer("conv1").filters == \
        summary.loc[summary.selected, "model.conv_blocks.0.filters"].item()
