"""Predictions, metrics and plots of a trained model.

``metrics.tsv`` is long format: columns ``task``, ``split``, ``metric``, ``value``.
Classification (binary, multitask, multiclass one-vs-rest): ``auroc``, ``auprc`` (average
precision, sklearn's step-wise area under the precision-recall curve) and
``positive_fraction``. Regression: ``pearson``, ``spearman``, ``mse``. Every split also gets
``n`` (number of sequences).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from peak2motif.train import configure_runtime, read_labels, split_info, stream_dataset  # noqa: E402
from peak2motif.utils import atomic_output  # noqa: E402

log = logging.getLogger(__name__)

CLASSIFICATION = ("binary", "multitask", "multiclass")


def predict_split(model: keras.Model, path: str | os.PathLike, batch_size: int = 256,
                  average_strands: bool = True) -> np.ndarray:
    """Predictions ``(N, T)`` for a split file, in file order.

    With ``average_strands`` the outputs for each sequence and its reverse complement are
    averaged (after the output activation).
    """
    ds = stream_dataset(path, batch_size, shuffle=False)
    preds = []
    for x, _ in ds:
        p = model(x, training=False)
        if average_strands:
            p = (p + model(x[:, ::-1, ::-1], training=False)) / 2
        preds.append(keras.ops.convert_to_numpy(p))
    if not preds:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return np.concatenate(preds).astype(np.float32)


def split_metrics(labels: np.ndarray, preds: np.ndarray, tasks: Sequence[str],
                  task_type: str) -> list[dict]:
    """Metric rows ``{task, metric, value}`` for one split (labels, preds ``(N, T)``)."""
    rows = []
    for t, task in enumerate(tasks):
        y, p = labels[:, t], preds[:, t]
        if task_type in CLASSIFICATION:
            pos = y > 0.5
            both = 0 < pos.sum() < len(pos)
            rows += [
                {"task": task, "metric": "auroc",
                 "value": skm.roc_auc_score(pos, p) if both else np.nan},
                {"task": task, "metric": "auprc",
                 "value": skm.average_precision_score(pos, p) if both else np.nan},
                {"task": task, "metric": "positive_fraction",
                 "value": float(pos.mean()) if len(pos) else np.nan},
            ]
        else:
            varies = len(y) > 1 and np.ptp(y) > 0 and np.ptp(p) > 0
            rows += [
                {"task": task, "metric": "pearson",
                 "value": stats.pearsonr(y, p)[0] if varies else np.nan},
                {"task": task, "metric": "spearman",
                 "value": stats.spearmanr(y, p)[0] if varies else np.nan},
                {"task": task, "metric": "mse",
                 "value": float(np.mean((y - p) ** 2)) if len(y) else np.nan},
            ]
        rows.append({"task": task, "metric": "n", "value": float(len(y))})
    return rows


def evaluate_splits(model: keras.Model, splits: Mapping[str, str | os.PathLike],
                    batch_size: int = 256, average_strands: bool = True
                    ) -> tuple[pd.DataFrame, dict]:
    """Metrics of ``model`` on each split; returns the table and ``{split: (labels, preds)}``."""
    rows, data = [], {}
    for split, path in splits.items():
        info = split_info(path)
        labels = read_labels(path)
        preds = predict_split(model, path, batch_size, average_strands)
        data[split] = (labels, preds)
        for row in split_metrics(labels, preds, info.tasks, info.task_type):
            rows.append({"task": row["task"], "split": split, "metric": row["metric"],
                         "value": row["value"]})
    return pd.DataFrame(rows, columns=["task", "split", "metric", "value"]), data


def mean_metric(metrics: pd.DataFrame, metric: str, split: str = "valid") -> float:
    """A metric averaged over tasks on one split (NaN if absent)."""
    sel = metrics[(metrics.split == split) & (metrics.metric == metric)]
    return float(sel.value.mean()) if len(sel) else float("nan")


def plot_curves(data: Mapping[str, tuple[np.ndarray, np.ndarray]], tasks: Sequence[str],
                task_type: str, path: str | os.PathLike) -> None:
    """ROC and PR curves per task and split (classification), or predicted vs observed."""
    if task_type in CLASSIFICATION:
        fig, (roc, pr) = plt.subplots(1, 2, figsize=(11, 4.8))
        for split, (labels, preds) in data.items():
            for t, task in enumerate(tasks):
                pos = labels[:, t] > 0.5
                if not 0 < pos.sum() < len(pos):
                    continue
                fpr, tpr, _ = skm.roc_curve(pos, preds[:, t])
                prec, rec, _ = skm.precision_recall_curve(pos, preds[:, t])
                label = f"{task} {split}"
                roc.plot(fpr, tpr, label=f"{label} (auROC {skm.auc(fpr, tpr):.3f})")
                pr.plot(rec, prec, label=f"{label} (auPRC "
                        f"{skm.average_precision_score(pos, preds[:, t]):.3f})")
        roc.plot([0, 1], [0, 1], ls=":", c="grey")
        roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        pr.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        for ax in (roc, pr):
            ax.legend(fontsize=7, loc="lower right" if ax is roc else "lower left")
    else:
        fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4.8), squeeze=False)
        for t, task in enumerate(tasks):
            ax = axes[0, t]
            for split, (labels, preds) in data.items():
                ax.scatter(labels[:, t], preds[:, t], s=4, alpha=0.4, label=split)
            ax.set(xlabel="observed", ylabel="predicted", title=task)
            ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_history(history: pd.DataFrame, path: str | os.PathLike) -> None:
    """Loss and each metric per epoch, train vs validation."""
    names = [c for c in history.columns
             if c not in ("epoch", "learning_rate") and not c.startswith("val_")]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.2 * (len(names) + 1), 3.8),
                             squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        ax.plot(history.epoch, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(history.epoch, history[f"val_{name}"], marker="o", label="validation")
        ax.set(xlabel="epoch", title=name)
        ax.legend(fontsize=8)
    ax = axes[0, -1]
    if "learning_rate" in history:
        ax.plot(history.epoch, history.learning_rate, marker="o")
    ax.set(xlabel="epoch", title="learning rate")
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_table(table: pd.DataFrame, tsv, html=None, caption: str = "") -> None:
    """Write a table as TSV and, for the report, as HTML."""
    with atomic_output(tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    if html:
        with atomic_output(html) as tmp:
            tmp.write_text(
                f"<h3>{caption}</h3>\n" + table.to_html(index=False, float_format="%.4f",
                                                         na_rep="NA")
            )


def run_evaluation(model_path, valid_path, test_path, history_path, metrics_tsv, metrics_html,
                   curves_png, history_png, *, batch_size: int = 256,
                   average_strands: bool = True, threads: int = 1) -> pd.DataFrame:
    """Evaluate a saved model on the valid and test splits; write metrics and plots."""
    configure_runtime(threads)
    model = keras.models.load_model(model_path, compile=False)
    metrics, data = evaluate_splits(model, {"valid": valid_path, "test": test_path},
                                    batch_size, average_strands)
    for _, row in metrics[metrics.metric.isin(["auroc", "auprc", "pearson"])].iterrows():
        log.info("%s %s %s = %.4f", row.task, row.split, row.metric, row.value)
    wide = metrics.pivot_table(index=["task", "split"], columns="metric", values="value",
                               sort=False).reset_index()
    write_table(metrics, metrics_tsv)
    with atomic_output(metrics_html) as tmp:
        tmp.write_text(
            "<h3>Validation and test metrics"
            + (" (predictions averaged over both strands)" if average_strands else "")
            + "</h3>\n" + wide.to_html(index=False, float_format="%.4f", na_rep="NA"))
    info = split_info(valid_path)
    plot_curves(data, info.tasks, info.task_type, curves_png)
    plot_history(pd.read_csv(history_path, sep="\t"), history_png)
    return metrics
