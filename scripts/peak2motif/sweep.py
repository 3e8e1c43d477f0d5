"""Hyperparameter sweep: the grid, each point's settings, the summary and the selection.

The ``sweep.grid`` config maps dotted keys of the ``model`` and ``training`` sections to
lists of values (``training.optimizer.learning_rate: [0.01, 0.001]``; list items by index,
``model.conv_blocks.0.filters: [32, 64]``). :func:`grid_table` turns it into one row per
point with short, path-safe column names; the workflow hands that table to Snakemake's
``Paramspace``, whose instance patterns (``learning_rate~0.01_batch_size~64``) name the
points' folders ``results/NAME/sweep/POINT/``. The best point is chosen on the validation
split only; the test split stays untouched until the final evaluation.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from peak2motif.errors import InputError
from peak2motif.utils import atomic_output

# TensorFlow is imported inside the functions that train: the workflow imports this module
# at start-up for the grid helpers, and should not pay for TensorFlow there.

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = {"auroc": True, "auprc": True, "pearson": True, "spearman": True,
                    "mse": False, "loss": False}

SAFE_POINT = re.compile(r"^[A-Za-z0-9_.~+-]+$")


def _alias(keys: Sequence[str]) -> dict[str, str]:
    """Short column names: the last non-index part of each key, longer where they clash."""
    short = {}
    for key in keys:
        parts = key.split(".")[1:]
        named = [p for p in parts if not p.isdigit()]
        short[key] = named[-1] if named else "_".join(parts)
    if len(set(short.values())) < len(short):
        short = {k: "_".join(k.split(".")[1:]) for k in keys}
    return {k: (v if v.isidentifier() else f"p_{v}") for k, v in short.items()}


def grid_table(grid: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """One row per grid point (the product of all lists), columns named by :func:`_alias`.

    ``df.attrs["keys"]`` maps each column back to its dotted config key.
    """
    keys = list(grid)
    alias = _alias(keys)
    rows = [dict(zip([alias[k] for k in keys], values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))]
    table = pd.DataFrame(rows, columns=[alias[k] for k in keys])
    # object dtype keeps 64 as 64 (not 64.0) in the folder names when a column mixes types
    table = table.astype(object)
    table.attrs["keys"] = {alias[k]: k for k in keys}
    return table


def point_overrides(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """For each grid point (same order as :func:`grid_table`), ``{dotted key: value}``."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))]


def check_point_names(names: Sequence[str]) -> None:
    """Point names become folder names: refuse values that would make odd paths."""
    for name in names:
        if not SAFE_POINT.match(name):
            raise InputError(
                f"a sweep point would be the folder '{name}'",
                key="sweep: grid",
                fix="use numbers, booleans or names made of letters, digits, '_', '.', '-' "
                    "as grid values",
            )
    if len(set(names)) != len(names):
        raise InputError("two sweep points have the same values", key="sweep: grid",
                         fix="remove repeated values from the grid's lists")


def apply_overrides(sections: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """A deep copy of ``{"model": ..., "training": ...}`` with dotted keys set.

    Raises :class:`InputError` naming the sweep key if a path does not exist.
    """
    out = copy.deepcopy(dict(sections))
    for key, value in overrides.items():
        node: Any = out
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise InputError(
                        f"'{part}' is not an item of the list '{'.'.join(parts[:i])}' "
                        f"({len(node)} items)", key=f"sweep: grid: {key}",
                        fix="index list items from 0, within the configured list")
                part = int(part)
            elif not isinstance(node, dict) or (not last and part not in node):
                raise InputError(f"'{'.'.join(parts[:i + 1])}' is not a config key",
                                 key=f"sweep: grid: {key}",
                                 fix="use a dotted key of the model or training section, as "
                                     "in config/README.md")
            if last:
                node[part] = value
            else:
                node = node[part]
    return out


def train_point(train_path, valid_path, out_dir, model_cfg, training_cfg,
                overrides: Mapping[str, Any], *, threads: int = 1, init_model=None,
                freeze_convolutions: bool = False) -> pd.DataFrame:
    """Train one sweep point; write its model, history and validation metrics into ``out_dir``.

    Only the validation split is evaluated: the test split must not influence the choice.
    """
    from peak2motif.evaluate import evaluate_splits, write_table
    from peak2motif.train import run_training

    cfg = apply_overrides({"model": model_cfg, "training": training_cfg}, overrides)
    log.info("sweep point %s", overrides)
    out = Path(out_dir)
    model = run_training(train_path, valid_path, out / "model.keras", out / "model.h5",
                         out / "history.tsv", cfg["model"], cfg["training"], threads=threads,
                         init_model=init_model, freeze_convolutions=freeze_convolutions)
    metrics, _ = evaluate_splits(
        model, {"valid": valid_path}, cfg["training"]["batch_size"],
        cfg["training"]["reverse_complement"]["average_predictions"])
    write_table(metrics, out / "metrics.tsv")
    return metrics


def summarize(points: Sequence[str], overrides: Sequence[Mapping[str, Any]],
              metrics_paths: Sequence[Sequence[str | os.PathLike]],
              history_paths: Sequence[Sequence[str | os.PathLike]], metric: str) -> pd.DataFrame:
    """One row per point: its settings, validation metrics and best val_loss averaged over
    its folds (``metrics_paths[i]`` lists point i's files, one per fold), and epochs.

    The column ``selected`` marks the best point by ``metric`` (see :data:`HIGHER_IS_BETTER`).
    """
    rows = []
    for name, over, mpaths, hpaths in zip(points, overrides, metrics_paths, history_paths,
                                          strict=True):
        m = pd.concat([pd.read_csv(p, sep="\t") for p in mpaths], ignore_index=True)
        hs = [pd.read_csv(p, sep="\t") for p in hpaths]
        row = {"point": name, **over, "folds": len(mpaths)}
        for met in ("auroc", "auprc", "pearson", "spearman", "mse"):
            if (m.metric == met).any():
                row[f"valid_{met}"] = float(m.value[(m.metric == met)
                                                    & (m.split == "valid")].mean())
        row["valid_loss"] = float(sum(h.val_loss.min() for h in hs) / len(hs)) \
            if all("val_loss" in h for h in hs) else float("nan")
        row["epochs"] = float(sum(len(h) for h in hs) / len(hs))
        rows.append(row)
    table = pd.DataFrame(rows)
    column = f"valid_{metric}"
    if column not in table or table[column].isna().all():
        available = [c.removeprefix("valid_") for c in table.columns if c.startswith("valid_")]
        raise InputError(f"metric '{metric}' is not available for this task type",
                         key="sweep: metric", fix=f"use one of: {', '.join(available)}")
    values = table[column]
    best = values.idxmax() if HIGHER_IS_BETTER[metric] else values.idxmin()
    table["selected"] = False
    table.loc[best, "selected"] = True
    return table


def select_model(*, points: Sequence[str], overrides: Sequence[Mapping[str, Any]],
                 n_folds: int, metrics: Sequence, histories: Sequence, models: Sequence,
                 h5s: Sequence, metric: str, summary_tsv, summary_html, selected_dir) -> str:
    """Write the sweep summary and copy the best point's model and history of every fold to
    ``selected_dir/FOLD/``; return the point's name.

    The file lists hold one file per (point, fold), point-major.
    """
    from peak2motif.evaluate import write_table

    def per_point(files):
        return [list(files[i * n_folds:(i + 1) * n_folds]) for i in range(len(points))]

    table = summarize(points, overrides, per_point(metrics), per_point(histories), metric)
    best = int(table.index[table.selected][0])
    name = table.point[best]
    log.info("best sweep point by validation %s (mean over %d folds): %s", metric, n_folds,
             name)
    write_table(table, summary_tsv, summary_html,
                caption=f"Sweep: validation metrics per point, mean over folds (best by "
                        f"validation {metric})")
    out = Path(selected_dir)
    for fold in range(n_folds):
        (out / str(fold)).mkdir(parents=True, exist_ok=True)
        i = best * n_folds + fold
        for src, dst in ((models[i], "model.keras"), (h5s[i], "model.h5"),
                         (histories[i], "history.tsv")):
            with atomic_output(out / str(fold) / dst) as tmp:
                shutil.copyfile(src, tmp)
    return name
