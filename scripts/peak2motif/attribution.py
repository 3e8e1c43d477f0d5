"""DeepLIFT contributions of selected sequences, with references, checks and figures.

Output ``results/NAME/contributions/contributions.h5``
-----------------------------------------------------
- ``onehot``        ``(N, L, 4)`` float32, the attributed sequences (A, C, G, T).
- ``hypothetical``  ``(N, L, 4)`` float32, hypothetical contributions (what each base would
  contribute at each position; TF-MoDISco's input), mean over references.
- ``actual``        ``(N, L, 4)`` float32, ``hypothetical * onehot``: the contribution of the
  observed base, zero elsewhere.
- ``region_index``  ``(N,)`` int64, rows of ``regions.tsv``.
- ``prediction``    ``(N, T)`` float32, model outputs (after the output activation).
- ``logit``         ``(N,)`` float32, the explained pre-activation output.
- ``split``         ``(N,)`` str, the split each sequence comes from.
- attributes: ``method`` (deeplift), ``mode``, ``reference``, ``n_references``,
  ``task_index``, ``task``, ``seed``.

Sequences are ranked by the prediction of the explained task, best first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from peak2motif import checks, sequences
from peak2motif.config import with_defaults
from peak2motif.errors import InputError
from peak2motif.sequences import N_CODE, one_hot, read_split
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

# The `attribution` defaults of config/config.schema.yaml, for library callers without
# Snakemake (tests, notebooks); the schema is their only source.
DEFAULTS = with_defaults("attribution")


def settings_with_defaults(cfg: dict | None) -> dict:
    """The attribution settings: ``cfg`` with the schema defaults filled in."""
    unknown = set(cfg or {}) - set(DEFAULTS)
    if unknown:
        raise InputError(f"unknown key(s) {sorted(unknown)}", key="attribution",
                         fix=f"use only {', '.join(DEFAULTS)}")
    return with_defaults("attribution", cfg)


# --- references --------------------------------------------------------------------------


def dinuc_shuffle_codes(codes: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` dinucleotide-preserving shuffles of each sequence, seeded.

    Parameters
    ----------
    codes
        ``(N, L)`` uint8.

    Returns
    -------
    ``(N, n, L)`` uint8.
    """
    rng = np.random.RandomState(seed)
    out = np.empty((len(codes), n, codes.shape[1]), dtype=np.uint8)
    for i, row in enumerate(codes):
        out[i] = sequences.dinuc_shuffle_codes(row, rng, n)
    return out


def dinucleotide_counts(codes: np.ndarray) -> np.ndarray:
    """Counts of the 25 ordered pairs over {A, C, G, T, N} in each row: ``(..., 25)``."""
    codes = np.asarray(codes, dtype=np.int64)
    flat = codes.reshape(-1, codes.shape[-1])
    pairs = flat[:, :-1] * 5 + flat[:, 1:]
    offs = np.arange(len(flat))[:, None] * 25
    counts = np.bincount((pairs + offs).ravel(), minlength=len(flat) * 25)
    return counts.reshape(codes.shape[:-1] + (25,))


def check_shuffles(codes: np.ndarray, ref_codes: np.ndarray) -> dict[str, float]:
    """Do the references really differ from their input and keep its dinucleotide counts?

    deeplift issue #136 reported shuffles that return the input unchanged.

    Returns
    -------
    ``reference_identical_fraction`` (references equal to their input) and
    ``reference_dinucleotide_mismatches`` (references whose dinucleotide counts differ).
    """
    identical = (ref_codes == codes[:, None, :]).all(-1)
    mismatch = (dinucleotide_counts(ref_codes) != dinucleotide_counts(codes)[:, None]).any(-1)
    return {
        "reference_identical_fraction": float(identical.mean()),
        "reference_dinucleotide_mismatches": float(mismatch.sum()),
    }


def fixed_reference(kind: str, length: int, gc: float = 0.41) -> np.ndarray:
    """One reference shared by all sequences: ``(L, 4)`` float32.

    ``uniform`` is 0.25 everywhere, ``zeros`` all zero, ``gc`` the base composition of GC
    fraction ``gc`` ((1-gc)/2, gc/2, gc/2, (1-gc)/2).
    """
    if kind == "uniform":
        row = [0.25] * 4
    elif kind == "zeros":
        row = [0.0] * 4
    elif kind == "gc":
        row = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    else:
        raise InputError(f"unknown reference {kind!r}", key="attribution: reference",
                         fix="use dinuc_shuffle, uniform, zeros or gc")
    return np.tile(np.asarray(row, dtype=np.float32), (length, 1))


def gc_fraction(codes: np.ndarray) -> float:
    """GC fraction of the A/C/G/T bases in ``codes``."""
    valid = codes != N_CODE
    return float(np.isin(codes[valid], (1, 2)).mean()) if valid.any() else 0.5


# --- selection ---------------------------------------------------------------------------


def resolve_task(tasks: list[str], task: str | int | None) -> int:
    """Index of the explained task (None: the first)."""
    if task is None:
        return 0
    if isinstance(task, int) and 0 <= task < len(tasks):
        return task
    if task in tasks:
        return tasks.index(task)
    raise InputError(f"task {task!r} is not one of the dataset's tasks {tasks}",
                     key="attribution: task", fix="give a task name from regions.tsv or null")


def load_candidates(split_paths: dict[str, str], splits: list[str], task_index: int | None,
                    positives_only: bool) -> dict:
    """Rows of the chosen splits (positives of the task only, if asked).

    Returns
    -------
    dict with ``codes`` (N, L) uint8, ``labels`` (N, T), ``region_index`` (N,), ``split``
    (N,) str, ``tasks`` and ``task_type``.
    """
    parts = []
    for name in splits:
        if name not in split_paths:
            raise InputError(f"unknown split {name!r}", key="attribution: splits",
                             fix="use train, valid and/or test")
        parts.append((name, read_split(split_paths[name])))
    tasks, task_type = parts[0][1].tasks, parts[0][1].task_type
    t = resolve_task(tasks, task_index)
    out = {"codes": [], "labels": [], "region_index": [], "split": []}
    for name, data in parts:
        keep = data.labels[:, t] > 0 if positives_only else np.ones(len(data.codes), bool)
        out["codes"].append(data.codes[keep])
        out["labels"].append(data.labels[keep])
        out["region_index"].append(data.region_index[keep])
        out["split"].append(np.full(int(keep.sum()), name))
    res = {k: np.concatenate(v) for k, v in out.items()}
    res.update(tasks=tasks, task_type=task_type, task_index=t)
    return res


# --- the whole stage ---------------------------------------------------------------------


def _set_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF already initialised in this process; keep its setting
        pass


def compute_contributions(
    model_h5: str | os.PathLike,
    split_paths: dict[str, str],
    regions_tsv: str | os.PathLike,
    out_h5: str | os.PathLike,
    out_checks: str | os.PathLike,
    out_checks_html: str | os.PathLike,
    out_png: str | os.PathLike,
    settings: dict | None = None,
    planted_tsv: str | os.PathLike | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Select sequences, run DeepLIFT (in a child process), check, and write the outputs.

    Parameters
    ----------
    model_h5
        Keras 3 Sequential model whose last layer is the output ``Activation``.
    split_paths
        ``{"train": path, "valid": path, "test": path}`` split files.
    regions_tsv
        Region table (for genome coordinates of the AUROC).
    planted_tsv
        Truth of a simulated dataset (chrom, start, end, ...); adds ``interpretability_auroc``.

    Returns
    -------
    The checks table (check, value, threshold, status).

    Raises
    ------
    checks.CheckFailed
        When summation-to-delta, the forward logits, the shap correlation or the reference
        shuffle check is outside its limit. The message says what to change.
    """
    import keras

    from peak2motif import deeplift_compat

    s = settings_with_defaults(settings)
    _set_threads(threads)
    layers = deeplift_compat.layer_summary(model_h5)
    deeplift_compat.deeplift_model_config(model_h5)  # fail early with a clear message
    model = keras.models.load_model(model_h5, compile=False)

    cand = load_candidates(split_paths, list(s["splits"]), s["task"], s["positives_only"])
    t = cand["task_index"]
    if len(cand["codes"]) == 0:
        raise InputError("no sequences to attribute", key="attribution: splits",
                         fix="choose other splits or set positives_only: false")
    pred = model.predict(one_hot(cand["codes"]), batch_size=s["batch_size"], verbose=0)
    order = np.argsort(-pred[:, t], kind="stable")
    if s["max_sequences"]:
        order = order[: s["max_sequences"]]
    codes = cand["codes"][order]
    pred = np.asarray(pred[order], dtype=np.float32)
    log.info("attributing %d sequences of %s (task %s)", len(codes), s["splits"],
             cand["tasks"][t])

    values: dict[str, float] = {"n_sequences": float(len(codes))}
    ref_codes = fixed = None
    if s["reference"] == "dinuc_shuffle":
        ref_codes = dinuc_shuffle_codes(codes, s["n_references"], s["seed"])
        values.update(check_shuffles(codes, ref_codes))
        n_refs = s["n_references"]
    else:
        fixed = fixed_reference(s["reference"], codes.shape[1], gc_fraction(codes))
        n_refs = 1
    values["n_references"] = float(n_refs)

    res = deeplift_compat.run_deeplift(
        model_h5, codes, ref_codes=ref_codes, fixed_ref=fixed, mode=s["mode"], task_index=t,
        batch_size=s["batch_size"], threads=threads, rescale_sample=s["shap_sample"],
    )
    log.info("deeplift: converted in %.1f s, scored %d sequences in %.1f s (%.0f seq/s)",
             res["convert_seconds"], len(codes), res["score_seconds"],
             len(codes) / max(res["score_seconds"], 1e-9))
    onehot = one_hot(codes)
    hyp = res["hypothetical"]
    actual = hyp * onehot
    values["nonfinite_contributions"] = float((~np.isfinite(hyp)).sum())
    per_pair, per_seq = checks.summation_to_delta_errors(
        res["contrib_sum"], res["logit"], res["logit_ref"])
    values["summation_to_delta_max_abs_error"] = float(per_pair.max())
    values["summation_to_delta_mean_reference_max_abs_error"] = float(per_seq.max())
    values["summation_to_delta_batches"] = float(len(res["batch_max_error"]))
    values["summation_tolerance"] = float(s["summation_tolerance"])
    values["median_abs_logit_delta"] = float(
        np.median(np.abs(res["logit"][:, None] - res["logit_ref"])))

    klogit = checks.keras_logits(model, onehot, s["batch_size"])[:, t]
    values["logit_max_abs_diff"] = float(np.abs(klogit - res["logit"]).max())

    refs_onehot = one_hot(ref_codes) if ref_codes is not None else np.broadcast_to(
        fixed, (len(codes), 1) + fixed.shape)
    n_shap = min(s["shap_sample"], len(codes))
    if n_shap:
        sh = checks.shap_contributions(model, onehot[:n_shap], np.asarray(refs_onehot[:n_shap]),
                                       task_index=t)
        # shap implements the Rescale rule: compare it with deeplift in Rescale mode (a check of
        # the conversion), and record the agreement of the chosen mode as well.
        rescale = (res["rescale_hypothetical"] * onehot[:n_shap]).sum(-1)
        values["shap_correlation"] = checks.correlation(sh.sum(-1), rescale)
        values[f"shap_correlation_{s['mode']}"] = checks.correlation(
            sh.sum(-1), actual[:n_shap].sum(-1))
        values["shap_sample"] = float(n_shap)
    n_ism = min(s["ism_sample"], len(codes))
    if n_ism:
        ism = checks.ism_scores(model, onehot[:n_ism], task_index=t)
        values["ism_correlation"] = checks.correlation(ism, actual[:n_ism].sum(-1))
    if planted_tsv is not None:
        regions = pd.read_csv(regions_tsv, sep="\t")
        planted = pd.read_csv(planted_tsv, sep="\t")
        windows = regions.iloc[cand["region_index"][order]][["chrom", "start"]]
        values["interpretability_auroc"] = checks.interpretability_auroc(
            actual, windows.reset_index(drop=True), planted)

    table = checks.verdicts(values, s)
    log.info("checks:\n%s", table.to_string(index=False))
    with atomic_output(out_checks) as tmp:
        table[["check", "value"]].to_csv(tmp, sep="\t", index=False)
    with atomic_output(out_checks_html) as tmp:
        tmp.write_text(checks_html(table, s))
    with atomic_output(out_h5) as tmp:
        with h5py.File(tmp, "w") as h5:
            for name, arr in (("onehot", onehot), ("hypothetical", hyp), ("actual", actual)):
                h5.create_dataset(name, data=arr.astype(np.float32), compression="gzip",
                                  compression_opts=1, chunks=(min(64, len(arr)),) + arr.shape[1:])
            h5["region_index"] = cand["region_index"][order].astype(np.int64)
            h5["prediction"] = pred
            h5["logit"] = res["logit"].astype(np.float32)
            h5["split"] = cand["split"][order].astype("S")
            h5.attrs.update(method="deeplift", mode=s["mode"], reference=s["reference"],
                            n_references=n_refs, task_index=t, task=cand["tasks"][t],
                            seed=s["seed"])
    with atomic_output(out_png) as tmp:
        plot_contributions(actual, pred[:, t], tmp, n=s["plot_sequences"])
    checks.raise_on_failure(table, layers)
    return table


def checks_html(table: pd.DataFrame, settings: dict) -> str:
    """A small HTML page of the checks table for the report."""
    body = table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
    return (
        "<html><head><meta charset='utf-8'><style>body{font-family:sans-serif}"
        "td,th{padding:4px 10px;text-align:left}</style></head><body>"
        "<h3>DeepLIFT contribution checks</h3>"
        f"<p>mode {settings['mode']}, reference {settings['reference']}"
        f" ({settings['n_references']} per sequence when shuffled). FAIL stops the workflow; "
        "'recorded' rows have no limit.</p>" + body + "</body></html>"
    )


def plot_contributions(actual: np.ndarray, score: np.ndarray, out_png: str | Path,
                       n: int = 4, width: int = 100) -> None:
    """Logos of the actual contributions of the first ``n`` sequences.

    Each panel shows ``width`` bp centred on the strongest ``width``-bp stretch of the sequence.
    """
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, min(n, len(actual)))
    length = actual.shape[1]
    width = min(width, length)
    fig, axes = plt.subplots(n, 1, figsize=(14, 1.9 * n), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        if i >= len(actual):
            ax.axis("off")
            continue
        mag = np.abs(actual[i].sum(-1))
        start = int(np.convolve(mag, np.ones(width), "valid").argmax())
        df = pd.DataFrame(actual[i, start : start + width], columns=list("ACGT"))
        df.index = np.arange(start, start + width)
        logomaker.Logo(df, ax=ax, color_scheme="classic")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel("contribution")
        ax.set_title(f"sequence {i + 1} (prediction {score[i]:.3f}), positions "
                     f"{start}-{start + width} of {length}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110, format="png")
    plt.close(fig)
