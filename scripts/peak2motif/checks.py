"""Checks of DeepLIFT contributions, and their verdicts.

- summation-to-delta: for every (sequence, reference) pair, the contributions sum to
  logit(x) - logit(ref) (deeplift's forward pass); the mean over references too;
- forward logits: deeplift's converted model gives the same logits as Keras (a dilated
  convolution, for one, converts silently and gives wrong logits);
- shap DeepExplainer on a sample, with the same references: per-position correlation;
- in-silico mutagenesis on a sample (optional): per-position correlation, recorded only;
- interpretability AUROC (Koo & Ploenzke 2021) when the planted truth is known.

Keras, shap and ISM need eager TensorFlow, so they run in the parent process and never in the
process where deeplift has disabled TF2 behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


class CheckFailed(RuntimeError):
    """A contribution check failed; the message says what is wrong and what to change."""


def summation_to_delta_errors(contrib_sum: np.ndarray, logit: np.ndarray,
                              logit_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summation-to-delta errors.

    Parameters
    ----------
    contrib_sum
        ``(N, R)`` sum of contributions for each (sequence, reference) pair.
    logit
        ``(N,)`` logit of each sequence.
    logit_ref
        ``(N, R)`` logit of each reference.

    Returns
    -------
    per_pair ``(N, R)`` and per_sequence ``(N,)`` absolute errors; per sequence is
    |mean over references of the sums - mean(logit - logit_ref)|.
    """
    delta = logit[:, None] - logit_ref
    per_pair = np.abs(contrib_sum - delta)
    per_seq = np.abs(contrib_sum.mean(1) - delta.mean(1))
    return per_pair, per_seq


def keras_logits(model, onehot: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``(N, T)`` logits of ``model`` on one-hot ``(N, L, 4)``."""
    from peak2motif.explain.keras_tools import logit_model

    return np.asarray(logit_model(model).predict(onehot, batch_size=batch_size, verbose=0))


def shap_contributions(model, onehot: np.ndarray, refs: np.ndarray,
                       task_index: int = 0) -> np.ndarray:
    """shap DeepExplainer contributions of the logit of one task, per-sequence references.

    Parameters
    ----------
    model
        Keras model (its logits are explained).
    onehot
        ``(n, L, 4)`` sequences.
    refs
        ``(n, R, L, 4)`` references of each sequence.

    Returns
    -------
    ``(n, L, 4)`` contributions (mean over references).
    """
    import shap

    from peak2motif.explain.keras_tools import logit_model, task_model

    one = task_model(logit_model(model), task_index)
    lookup = {onehot[i].astype(np.float32).tobytes(): refs[i] for i in range(len(onehot))}

    def background(x):
        return [lookup[np.asarray(x[0], dtype=np.float32).tobytes()]]

    explainer = shap.DeepExplainer(one, background)
    phis = explainer.shap_values(onehot.astype(np.float32), check_additivity=False)
    phis = np.asarray(phis)
    return phis.reshape(onehot.shape)


def ism_scores(model, onehot: np.ndarray, task_index: int = 0,
               batch_size: int = 512) -> np.ndarray:
    """In-silico mutagenesis importance per position.

    Each position's score is logit(x) minus the mean logit over the three single-base
    substitutions (the same sign convention as contributions).

    Returns
    -------
    ``(n, L)`` float.
    """
    from peak2motif.explain.keras_tools import logit_model

    lm = logit_model(model)
    n, length, _ = onehot.shape
    out = np.zeros((n, length))
    for i in range(n):
        x = onehot[i]
        base = x.argmax(-1)
        muts = np.repeat(x[None], length * 3, axis=0)
        pos = np.repeat(np.arange(length), 3)
        alt = np.stack([(base + k) % 4 for k in (1, 2, 3)], 1).reshape(-1)
        muts[np.arange(len(muts)), pos] = 0.0
        muts[np.arange(len(muts)), pos, alt] = 1.0
        ref_logit = lm.predict(x[None], verbose=0)[0, task_index]
        mut_logit = lm.predict(muts, batch_size=batch_size, verbose=0)[:, task_index]
        out[i] = ref_logit - mut_logit.reshape(length, 3).mean(1)
        out[i, x.max(-1) == 0] = 0.0
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays, flattened (nan when either is constant)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def planted_mask(windows: pd.DataFrame, planted: pd.DataFrame, length: int) -> np.ndarray:
    """Positions of each window covered by a planted motif.

    Parameters
    ----------
    windows
        Columns ``chrom``, ``start`` (0-based) of each window; N rows.
    planted
        Columns ``chrom``, ``start``, ``end`` (0-based, half-open) of the planted motifs.

    Returns
    -------
    ``(N, length)`` bool.
    """
    mask = np.zeros((len(windows), length), dtype=bool)
    by_chrom = {c: g[["start", "end"]].to_numpy(np.int64) for c, g in planted.groupby("chrom")}
    for i, (chrom, start) in enumerate(zip(windows["chrom"], windows["start"], strict=True)):
        iv = by_chrom.get(chrom)
        if iv is None:
            continue
        hits = iv[(iv[:, 0] < start + length) & (iv[:, 1] > start)]
        for s, e in hits:
            mask[i, max(0, s - start) : min(length, e - start)] = True
    return mask


def interpretability_auroc(actual: np.ndarray, windows: pd.DataFrame,
                           planted: pd.DataFrame) -> float:
    """AUROC of contribution magnitude at planted positions vs all other positions.

    As in Koo & Ploenzke (2021): the score of a position is the magnitude of its contribution
    (|sum over bases of ``actual``|), positives are positions inside a planted motif, negatives
    every other position of the same windows. Windows without any planted motif are left out.

    Parameters
    ----------
    actual
        ``(N, L, 4)`` contributions.
    windows
        ``chrom``, ``start`` of each of the N windows (genome coordinates).
    planted
        ``chrom``, ``start``, ``end`` of the planted motifs.
    """
    from sklearn.metrics import roc_auc_score

    mask = planted_mask(windows, planted, actual.shape[1])
    keep = mask.any(1)
    if not keep.any() or mask[keep].all() or not np.isfinite(actual[keep]).all():
        return float("nan")
    score = np.abs(actual[keep].sum(-1))
    return float(roc_auc_score(mask[keep].ravel(), score.ravel()))


LOWEST_LIMITS = ("completeness_bound",)
COUNTS = ("nonfinite_contributions", "reference_dinucleotide_mismatches",
          "reference_moved_n", "n_sequences")
LOWEST = ("shap_correlation", "ism_correlation", "interpretability_auroc")


def merge_values(into: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    """Combine check values of two parts of a job (or of several jobs) in place.

    Counts add up, correlations keep the lowest, and errors and fractions the largest (the
    worst part decides); ``n_positives_*`` and ``seconds`` add up too.
    """
    for k, v in more.items():
        if k not in into:
            into[k] = v
        elif k in COUNTS or k.startswith("n_positives_") or k == "seconds":
            into[k] = into[k] + v
        elif k in LOWEST or k in LOWEST_LIMITS:
            into[k] = min(into[k], v) if np.isfinite(into[k]) and np.isfinite(v) else np.nan
        else:
            into[k] = max(into[k], v) if np.isfinite(into[k]) and np.isfinite(v) else np.nan
    return into


def limits(settings: dict, exact: bool = True,
           completeness_bound: float | None = None) -> dict[str, tuple[str, float]]:
    """The limit of every checked quantity (see config/README.md, attribution).

    Exact methods are held to ``summation_tolerance``; an approximate one (integrated
    gradients) to the completeness bound it reports for the run.
    """
    summation = settings["summation_tolerance"] if exact else completeness_bound
    return {
        "summation_to_delta_max_abs_error": ("<=", summation),
        "stored_summation_max_abs_error": ("<=", summation),
        "logit_max_abs_diff": ("<=", settings["logit_tolerance"]),
        "shap_correlation": (">=", settings["shap_min_correlation"]),
        "independent_hypothetical_relative_diff": ("<=", settings["crosscheck_tolerance"]),
        "package_relative_diff": ("<=", settings["package_tolerance"]),
        "reference_identical_fraction": ("<=", settings["max_identical_reference_fraction"]),
        "reference_dinucleotide_mismatches": ("<=", 0),
        "reference_moved_n": ("<=", 0),
        "nonfinite_contributions": ("<=", 0),
        "ig_convergence_relative_diff": ("<=", settings["ig_convergence_tolerance"]),
        # verify_contributions, on the gathered file (peak2motif.verify)
        "verify_stored_summation_max_abs_error": ("<=", summation),
        "verify_nonfinite_contributions": ("<=", 0),
        "verify_logit_max_abs_diff": ("<=", settings["logit_tolerance"]),
        "verify_prediction_max_abs_diff": ("<=", settings["logit_tolerance"]),
        "verify_evaluation_max_abs_diff": ("<=", settings["logit_tolerance"]),
        "verify_hypothetical_relative_diff": ("<=", settings["crosscheck_tolerance"]),
    }


def verdicts(values: dict[str, float], settings: dict, exact: bool = True) -> pd.DataFrame:
    """Checks table with thresholds and pass/fail.

    ``exact`` says whether the method promises summation-to-delta (DeepLIFT) or only
    approximate completeness (integrated gradients), which sets the summation limits.

    Returns
    -------
    DataFrame with columns ``check``, ``value``, ``threshold``, ``status`` (pass, FAIL or
    recorded).
    """
    bounds = limits(settings, exact, values.get("completeness_bound"))
    rows = []
    for name, value in values.items():
        op, limit = bounds.get(name, (None, None))
        if op is None or limit is None or value is None:
            status, threshold = "recorded", ""
        else:
            # NaN compares False both ways, so a NaN in a checked quantity fails the check.
            ok = value <= limit if op == "<=" else value >= limit
            status, threshold = ("pass" if ok else "FAIL"), f"{op} {limit:g}"
        rows.append({"check": name, "value": value, "threshold": threshold, "status": status})
    return pd.DataFrame(rows, columns=["check", "value", "threshold", "status"])


_HINTS = {
    "summation_to_delta_max_abs_error": (
        "the contributions of a (sequence, reference) pair do not add up to logit(x) - "
        "logit(reference). For integrated gradients raise `attribution: ig_steps`; for the "
        "deeplift package, max pooling breaks summation (use `attribution: method: deeplift`, "
        "the native method, which keeps it exact)"
    ),
    "stored_summation_max_abs_error": (
        "the stored contributions of the observed bases (hypothetical x one-hot) do not add up "
        "to the mean logit difference: the references give N positions a base, or the "
        "hypothetical contributions are wrong. This is a bug; please report it"
    ),
    "independent_hypothetical_relative_diff": (
        "a second, independent implementation gives other hypothetical contributions (the "
        "values of bases not in the sequence, which TF-MoDISco reads). This is a bug in the "
        "method; try another `attribution: method` and report it"
    ),
    "package_relative_diff": (
        "the native DeepLIFT and the deeplift package disagree on the same model and "
        "references. The package computes in float32 and is off by up to 3 % where sigmoid "
        "or tanh units saturate: if the independent check passed, raise "
        "`attribution: package_tolerance`; otherwise report it"
    ),
    "reference_moved_n": (
        "some references put bases where the input has N: a bug in the shuffle"
    ),
    "logit_max_abs_diff": (
        "deeplift's converted model computes different logits from Keras, so its contributions "
        "are of a different model. Remove the layer or setting deeplift ignores (dilation, "
        "grouped convolution, custom layers) or raise `attribution: logit_tolerance` only if "
        "the difference is float round-off"
    ),
    "shap_correlation": (
        "DeepLIFT and shap DeepExplainer (the same Rescale rule) disagree on the same model "
        "and references: the method mistranslates a layer. Try another `attribution: method`"
    ),
    "reference_identical_fraction": (
        "many dinucleotide-shuffled references equal their input (low-complexity sequences "
        "have few distinct shuffles). Use `attribution: reference: gc` or `uniform`"
    ),
    "reference_dinucleotide_mismatches": (
        "the shuffled references do not keep dinucleotide counts: a bug in the shuffle"
    ),
    "nonfinite_contributions": (
        "some contributions are NaN or infinite: an activation overflowed in the DeepLIFT "
        "graph. Check the model's activations (e.g. an exponential first layer with very "
        "large inputs) or use `attribution: mode: RevealCancel`"
    ),
    "ig_convergence_relative_diff": (
        "integrated gradients' hypothetical contributions still change when the steps double "
        "(the largest change, relative to the largest value, on the cross-check sample): "
        "raise `attribution: ig_steps` (double it)"
    ),
    "verify_stored_summation_max_abs_error": (
        "in the gathered contributions.h5, the stored contributions of the observed bases do "
        "not add up to the stored logit difference on the file's own sequences: rows of "
        "contributions and sequences were mismatched after the method ran (gather, or the "
        "file changed). Delete results/NAME/contributions and the shards "
        "(results/NAME/folds/*/contributions) and rerun; if it repeats, report it"
    ),
    "verify_nonfinite_contributions": (
        "the gathered contributions.h5 holds NaN or infinite hypothetical contributions, which "
        "TF-MoDISco would read: delete results/NAME/contributions and rerun"
    ),
    "verify_logit_max_abs_diff": (
        "a task's stored logits are not that task's logits of the model file on the stored "
        "sequences: the stage explained another output column or another model. Rerun "
        "`snakemake --forcerun compute_contributions`; if it repeats, report it"
    ),
    "verify_prediction_max_abs_diff": (
        "the stored predictions are not the model file's on the stored sequences: the model "
        "file changed after the attribution stage, or the stage loaded another model. Rerun "
        "`snakemake --forcerun compute_contributions`"
    ),
    "verify_evaluation_max_abs_diff": (
        "the attribution stage's predictions differ from the evaluation stage's for the same "
        "regions: the model that was explained is not the one that was evaluated (a model "
        "file replaced between the two). Rerun both: `snakemake --forcerun evaluate_model "
        "compute_contributions`"
    ),
    "verify_hypothetical_relative_diff": (
        "a second implementation, given the stage's own references (regenerated from their "
        "seeds), gives other hypothetical contributions for a sample of the gathered file: "
        "the file changed after the method ran, the references were not those of the seeds, "
        "or the method is wrong for a layer of this model. Delete results/NAME/contributions "
        "and rerun; if it repeats, try another `attribution: method` and report it"
    ),
}


def raise_on_failure(table: pd.DataFrame, layers: Sequence[str] = ()) -> None:
    """Raise :class:`CheckFailed` naming every failed check and what to change."""
    failed = table[table["status"] == "FAIL"]
    if failed.empty:
        return
    lines = [
        f"- {r.check} = {r.value:.3g} (required {r.threshold}): {_HINTS.get(r.check, '')}"
        for r in failed.itertuples()
    ]
    if layers:
        lines.append(f"Model layers: {', '.join(layers)}.")
    raise CheckFailed("Contribution checks failed:\n" + "\n".join(lines))
