"""Predictions, metrics and plots of the trained models.

``metrics.tsv`` is long format: columns ``task``, ``split``, ``fold``, ``metric``, ``value``.
Each fold's model is scored on its own valid and test splits (``fold`` 0, 1, ...); the
dataset's table adds ``fold`` = ``pooled``: the test splits of all folds together, each
region predicted by the model that never saw it. Classification (binary, multitask,
multiclass one-vs-rest): ``auroc``, ``auprc`` (average precision, sklearn's step-wise area
under the precision-recall curve) and ``positive_fraction``. Regression: ``pearson``,
``spearman``, ``mse`` over peaks and negatives together, and ``pearson_peaks``,
``spearman_peaks``, ``mse_peaks`` over the peaks alone (the negatives' zero signal inflates
the first three). Every split also gets ``n`` (number of sequences).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from peak2motif.presentation import pyplot, render, write_page
from peak2motif.presentation import table as html_table
from peak2motif.splitfiles import read_labels, split_info
from peak2motif.train import configure_runtime, stream_dataset
from peak2motif.utils import atomic_output

plt = pyplot()

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


def _regression_rows(task: str, y: np.ndarray, p: np.ndarray, suffix: str = "") -> list[dict]:
    varies = len(y) > 1 and np.ptp(y) > 0 and np.ptp(p) > 0
    return [
        {"task": task, "metric": f"pearson{suffix}",
         "value": stats.pearsonr(y, p)[0] if varies else np.nan},
        {"task": task, "metric": f"spearman{suffix}",
         "value": stats.spearmanr(y, p)[0] if varies else np.nan},
        {"task": task, "metric": f"mse{suffix}",
         "value": float(np.mean((y - p) ** 2)) if len(y) else np.nan},
    ]


def split_metrics(labels: np.ndarray, preds: np.ndarray, tasks: Sequence[str],
                  task_type: str, is_peak: np.ndarray | None = None) -> list[dict]:
    """Metric rows ``{task, metric, value}`` for one split (labels, preds ``(N, T)``).

    For regression, ``is_peak`` ``(N,)`` (the region is a peak, not a negative) adds the
    peaks-only metrics.
    """
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
            rows += _regression_rows(task, y, p)
            if is_peak is not None:
                rows += _regression_rows(task, y[is_peak], p[is_peak], "_peaks")
        rows.append({"task": task, "metric": "n", "value": float(len(y))})
    return rows


def evaluate_splits(model: keras.Model, splits: Mapping[str, str | os.PathLike],
                    batch_size: int = 256, average_strands: bool = True,
                    is_peak: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    """Metrics of ``model`` on each split; returns the table and
    ``{split: (labels, preds, region_index)}``. ``is_peak`` is indexed by region row."""
    from peak2motif.splitfiles import read_region_index

    rows, data = [], {}
    for split, path in splits.items():
        info = split_info(path)
        labels = read_labels(path)
        index = read_region_index(path)
        preds = predict_split(model, path, batch_size, average_strands)
        data[split] = (labels, preds, index)
        peak = is_peak[index] if is_peak is not None else None
        for row in split_metrics(labels, preds, info.tasks, info.task_type, peak):
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
        for split, (labels, preds, *_) in data.items():
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
            for split, (labels, preds, *_) in data.items():
                ax.scatter(labels[:, t], preds[:, t], s=4, alpha=0.4, label=split)
            ax.set(xlabel="observed", ylabel="predicted", title=task)
            ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def best_epoch(history: pd.DataFrame, monitor: str = "auto") -> tuple[str, int] | None:
    """The monitored column of a fold's history and the epoch early stopping restored (the
    best value: lowest loss, highest auROC/auPRC). ``auto`` is val_auroc when the history has
    it (classification), else val_loss, as in training."""
    if monitor == "auto":
        monitor = "val_auroc" if "val_auroc" in history else "val_loss"
    if monitor not in history or history[monitor].isna().all():
        return None
    values = history[monitor].to_numpy(dtype=float)
    at = int(np.nanargmin(values) if monitor.endswith("loss") else np.nanargmax(values))
    return monitor, int(history["epoch"].iloc[at])


def plot_history(histories: Sequence[pd.DataFrame], path: str | os.PathLike,
                 monitor: str = "auto") -> None:
    """Loss and each metric per epoch: train solid blue, validation dashed orange (one shade
    per fold), and the epoch whose weights early stopping restored (by ``monitor``) marked."""
    names = [c for c in histories[0].columns
             if c not in ("epoch", "learning_rate") and not c.startswith("val_")]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.2 * (len(names) + 1), 3.8),
                             squeeze=False)
    train_colours = plt.get_cmap("Blues")(np.linspace(0.85, 0.5, len(histories)))
    valid_colours = plt.get_cmap("Oranges")(np.linspace(0.85, 0.5, len(histories)))
    for k, history in enumerate(histories):
        tag = f" (fold {k})" if len(histories) > 1 else ""
        best = best_epoch(history, monitor)
        for ax, name in zip(axes[0], names, strict=False):
            ax.plot(history.epoch, history[name], marker=".", color=train_colours[k],
                    label=f"train{tag}")
            if f"val_{name}" in history:
                ax.plot(history.epoch, history[f"val_{name}"], ls="--", marker=".",
                        color=valid_colours[k], label=f"validation{tag}")
            if best is not None:
                ax.axvline(best[1], color=valid_colours[k], lw=1, ls=":",
                           label=f"restored epoch {best[1]}{tag} (best {best[0]})")
            ax.set(xlabel="epoch", title=name)
        if "learning_rate" in history:
            axes[0, -1].plot(history.epoch, history.learning_rate, marker=".",
                             color=train_colours[k], label=f"learning rate{tag}")
    axes[0, -1].set(xlabel="epoch", title="learning rate")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    # one column per fold (the legend fills columns first); one row when there is one fold
    ncol = len(labels) if len(histories) == 1 else len(histories)
    rows = -(-len(labels) // ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.02 + 0.055 * rows, 1, 1))
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
        write_page(html, "table_page.html", title=caption, heading=caption, note="",
                   table=html_table(table))


def _is_peak(regions_tsv) -> np.ndarray:
    from peak2motif.regions import read_regions

    return (read_regions(regions_tsv)["kind"] == "peak").to_numpy()


def evaluate_fold(model_path, split_paths: Mapping[str, str | os.PathLike], regions_tsv,
                  metrics_tsv, predictions_tsv, *, fold: int, batch_size: int = 256,
                  average_strands: bool = True, threads: int = 1) -> pd.DataFrame:
    """Score one fold's model on its valid and test splits; write the metrics and the test
    predictions (region_index, fold, label_TASK, pred_TASK for pooling, and forward_TASK:
    the forward strand alone, what the attribution stage stores and verify_contributions
    compares)."""
    configure_runtime(threads)
    model = keras.models.load_model(model_path, compile=False)
    metrics, data = evaluate_splits(model, {s: split_paths[s] for s in ("valid", "test")},
                                    batch_size, average_strands, _is_peak(regions_tsv))
    metrics.insert(2, "fold", str(fold))
    for _, row in metrics[metrics.metric.isin(["auroc", "auprc", "pearson"])].iterrows():
        log.info("fold %s %s %s %s = %.4f", fold, row.task, row.split, row.metric, row.value)
    write_table(metrics, metrics_tsv)
    labels, preds, index = data["test"]
    tasks = split_info(split_paths["test"]).tasks
    pred = pd.DataFrame({"region_index": index, "fold": fold})
    forward = predict_split(model, split_paths["test"], batch_size, average_strands=False) \
        if average_strands else preds
    for t, task in enumerate(tasks):
        pred[f"label_{task}"] = labels[:, t]
        pred[f"pred_{task}"] = preds[:, t]
        pred[f"forward_{task}"] = forward[:, t]
    write_table(pred, predictions_tsv)
    return metrics


# What a test auROC says about the model, from what the workflow measurably reaches: the
# realistic CI case (worm_ci_1200) reaches 0.93-0.94 and recovers every planted motif; a
# poorly trained model at 0.57 gave motifs no better than noise (BENCHMARKS.md, FACTS.md).
AUROC_GOOD = 0.8
AUROC_WEAK = 0.6


def auroc_verdict(task: str, auroc: float, positive_fraction: float, auprc: float) -> dict:
    """A "what good looks like" verdict on a task's pooled test auROC and auPRC against
    what a random classifier reaches (auROC 0.5, auPRC = the positive fraction)."""
    text = (f"test auROC {auroc:.3f} (a random classifier: 0.5); auPRC {auprc:.3f} (random: "
            f"the positive fraction, {positive_fraction:.3f}). ")
    if auroc >= AUROC_GOOD:
        level, label = "good", f"{task}: learned."
        text += f"At or above {AUROC_GOOD}, motifs from the contributions are worth reading."
    elif auroc >= AUROC_WEAK:
        level, label = "fair", f"{task}: weak."
        text += (f"Between {AUROC_WEAK} and {AUROC_GOOD}: the model learned part of the signal; "
                 "read its motifs with care, and consider more peaks or training longer.")
    else:
        level, label = "bad", f"{task}: near chance."
        text += (f"Below {AUROC_WEAK}: the model barely separates peaks from negatives, so "
                 "its contributions and motifs are not evidence of anything.")
    return dict(level=level, label=label, text=text)


def metrics_page(metrics: pd.DataFrame, task_type: str) -> str:
    """The report page of the metrics (long table, columns task, split, fold, metric, value):
    one row per task, fold and split, and a verdict per task on the pooled test auROC."""
    folds = metrics.loc[metrics["fold"] != "pooled", "fold"].nunique()
    shown = metrics if folds > 1 else metrics[metrics["fold"] != "pooled"]
    wide = shown.pivot_table(index=["task", "fold", "split"], columns="metric",
                             values="value", sort=False).reset_index()
    wide.columns = [str(c) for c in wide.columns]
    verdicts = []
    if task_type != "regression":
        test = metrics[(metrics["split"] == "test")
                       & (metrics["fold"] == ("pooled" if folds > 1 else shown["fold"].iloc[0]))]
        for task, sub in test.groupby("task", sort=False):
            value = sub.set_index("metric")["value"]
            if {"auroc", "auprc", "positive_fraction"} <= set(value.index):
                verdicts.append(auroc_verdict(str(task), float(value["auroc"]),
                                              float(value["positive_fraction"]),
                                              float(value["auprc"])))
    note = ("Each fold's model on its own validation and test splits"
            + ("; pooled is the test splits of all folds together, each region predicted by "
               "the model that never saw it." if folds > 1 else " (one fold).")
            + (" For regression, *_peaks metrics are over the peaks alone; the others "
               "include the negatives, whose zero signal inflates them."
               if task_type == "regression" else
               " What good looks like: auROC well above 0.5, auPRC well above the positive "
               "fraction. The table is metrics.tsv (in this report, long format)."))
    return render("metrics.html", title="metrics", note=note, verdicts=verdicts,
                  table=html_table(wide))


def summarize_evaluation(metrics_paths: Sequence, predictions_paths: Sequence,
                         history_paths: Sequence, regions_tsv, task_type: str, metrics_tsv,
                         metrics_html, curves_png, history_png,
                         monitor: str = "auto") -> pd.DataFrame:
    """Per-fold metrics and the pooled test metrics; the curves of the pooled test set."""
    per_fold = pd.concat([pd.read_csv(p, sep="\t", dtype={"fold": str})
                          for p in metrics_paths], ignore_index=True)
    pred = pd.concat([pd.read_csv(p, sep="\t") for p in predictions_paths], ignore_index=True)
    tasks = [c.removeprefix("label_") for c in pred.columns if c.startswith("label_")]
    labels = pred[[f"label_{t}" for t in tasks]].to_numpy()
    preds = pred[[f"pred_{t}" for t in tasks]].to_numpy()
    is_peak = _is_peak(regions_tsv)[pred["region_index"].to_numpy()]
    pooled = pd.DataFrame(split_metrics(labels, preds, tasks, task_type, is_peak))
    pooled.insert(1, "split", "test")
    pooled.insert(2, "fold", "pooled")
    metrics = pd.concat([per_fold, pooled], ignore_index=True)
    write_table(metrics, metrics_tsv)
    with atomic_output(metrics_html) as tmp:
        tmp.write_text(metrics_page(metrics, task_type))
    plot_curves({"pooled test": (labels, preds)}, tasks, task_type, curves_png)
    plot_history([pd.read_csv(h, sep="\t") for h in history_paths], history_png, monitor)
    for row in pooled[pooled.metric.isin(["auroc", "pearson", "pearson_peaks"])].itertuples():
        log.info("pooled test %s %s = %.4f", row.task, row.metric, row.value)
    return metrics
