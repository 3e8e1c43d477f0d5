"""Checks of the gathered contributions file, read the way the motif stage reads it.

The attribution jobs check what they compute; this checks what was written, after the
gather, with nothing shared with the stage but the file, the model files and the evaluation's
predictions:

- ``verify_stored_summation_max_abs_error``: per task, ``sum(hypothetical x one_hot(codes))``
  of every row, from the file's own sequences, against its stored ``logit_delta``;
- ``verify_nonfinite_contributions``: NaN or infinite hypothetical contributions;
- ``verify_logit_max_abs_diff`` and ``verify_prediction_max_abs_diff``: the stored logits of
  each task and the stored predictions against each fold's model file run on the stored
  sequences;
- ``verify_evaluation_max_abs_diff``: the stored predictions against the evaluation stage's
  (``evaluate_model``'s forward-strand predictions of the same region and task), on the
  regions both have (``verify_evaluation_regions``): the attribution stage explained the
  model that was evaluated;
- ``verify_hypothetical_relative_diff``: the hypothetical contributions of a seeded sample of
  ``verify_sample`` rows per task, recomputed with the stage's own references (regenerated
  from their per-region seeds) by a second implementation: float64 eager DeepLIFT
  (:func:`peak2motif.explain.checks.deeplift_simple`) for ``deeplift``, the plain
  integrated gradients (:func:`peak2motif.explain.integrated_gradients.simple`, same steps)
  for ``integrated_gradients``, a fresh run for ``deeplift_package``; the largest difference
  over all four bases, relative to the largest recomputed value.

The sample: a fault confined to a fraction p of the rows is missed by n rows drawn at random
with probability at most (1 - p)^n. The Rescale fallback fault of issue 21 (10 % of the
largest value in 7 of 64 rows, p = 0.11) is missed by 64 rows with probability 6e-4.

``python -m peak2motif.verify results/NAME`` runs the same checks on an existing results
folder (its settings from ``results/NAME/provenance/config.yaml``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from peak2motif import checks, contributions
from peak2motif.errors import InputError
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

# rows per model call when the stored sequences are predicted again
BLOCK = 2048
# sequences per call of the second implementation (float64, eager: memory of R refs each)
SAMPLE_BLOCK = 8


def _attrs(h5) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in h5.attrs.items()}


def _check_settings(attrs: dict, settings: dict, path) -> None:
    """The file was made with the references the settings describe (else they cannot be
    regenerated)."""
    wanted = {"method": settings["method"], "reference": settings["reference"],
              "seed": settings["seed"]}
    if settings["reference"] == "dinuc_shuffle":
        wanted["n_references"] = settings["n_references"]
    differ = {k: (attrs.get(k), v) for k, v in wanted.items() if attrs.get(k) != v}
    if differ:
        raise InputError("the file was made with other attribution settings than the config's "
                         + ", ".join(f"{k} {a!r} (config {b!r})" for k, (a, b) in differ.items()),
                         path=str(path), fix="rerun the attribution stage with this config "
                         "(snakemake --forcerun compute_contributions)")


def model_outputs(model, codes: np.ndarray, batch_size: int = BLOCK
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Logits and outputs ``(N, T)`` of ``model`` on codes ``(N, L)``, a block at a time."""
    from peak2motif.sequences import one_hot

    logits, preds = [], []
    for lo in range(0, len(codes), batch_size):
        lg = checks.keras_logits(model, one_hot(codes[lo:lo + batch_size]), batch_size)
        logits.append(lg)
        preds.append(np.asarray(model.layers[-1](lg), dtype=np.float32))
    t = model.output_shape[-1]
    if not logits:
        return np.zeros((0, t), np.float32), np.zeros((0, t), np.float32)
    return np.concatenate(logits), np.concatenate(preds)


def evaluation_diff(region_index: np.ndarray, fold: np.ndarray, prediction: np.ndarray,
                    outputs: list[str], prediction_tables: list) -> tuple[float, int]:
    """Largest |stored prediction - evaluation's forward prediction| over the regions both
    have (same region, same fold), and their count."""
    worst, n = 0.0, 0
    if not len(region_index):
        return worst, n
    for path in prediction_tables:
        ev = pd.read_csv(path, sep="\t")
        missing = [f"forward_{t}" for t in outputs if f"forward_{t}" not in ev]
        if missing:
            raise InputError(f"no column(s) {', '.join(missing)} (made before the evaluation "
                             "wrote forward-strand predictions, or for other tasks)",
                             path=str(path), fix="rerun it: snakemake --forcerun evaluate_model")
        at = np.searchsorted(region_index, ev["region_index"].to_numpy())
        at = np.minimum(at, len(region_index) - 1)
        both = region_index[at] == ev["region_index"].to_numpy()
        both &= fold[at] == ev["fold"].to_numpy()
        if not both.any():
            continue
        theirs = ev.loc[both, [f"forward_{t}" for t in outputs]].to_numpy(np.float64)
        worst = max(worst, float(np.abs(prediction[at[both]] - theirs).max()))
        n += int(both.sum())
    return worst, n


def sample_rows(n: int, k: int, seed: int, task: str) -> np.ndarray:
    """``min(n, k)`` rows of ``n``, seeded by (seed, task), in increasing order."""
    rng = np.random.default_rng([seed, 21, *task.encode()])
    return np.sort(rng.choice(n, min(n, k), replace=False))


def recompute_hypothetical(model, onehot: np.ndarray, refs: np.ndarray, task_index: int,
                           settings: dict) -> np.ndarray:
    """The hypothetical contributions ``(n, L, 4)`` of ``onehot`` by the second implementation
    of the configured method (module docstring), with the references ``(n, R, L, 4)``."""
    from peak2motif import explain
    from peak2motif.attribution import method_options
    from peak2motif.explain import integrated_gradients as ig

    method = settings["method"]
    out = []
    for lo in range(0, len(onehot), SAMPLE_BLOCK):
        x, r = onehot[lo:lo + SAMPLE_BLOCK], refs[lo:lo + SAMPLE_BLOCK]
        if method == "deeplift":
            out.append(explain.checks.deeplift_simple(model, x, r, task_index))
        elif method == "integrated_gradients":
            out.append(ig.simple(model, x, r, task_index=task_index,
                                 steps=settings["ig_steps"],
                                 rule=settings["ig_rule"]).hypothetical)
        else:
            out.append(explain.explain(model, x, r, method=method, task_index=task_index,
                                       **method_options(settings, 1)).hypothetical)
    return np.concatenate(out).astype(np.float64) if out else np.zeros(onehot.shape)


def verify_values(contributions_h5: str | os.PathLike, models: list, predictions: list,
                  settings: dict) -> dict[str, float]:
    """The check values of the module docstring for one gathered contributions file.

    Parameters
    ----------
    contributions_h5
        ``results/NAME/contributions/contributions.h5``.
    models
        Each fold's ``model.keras``, in fold order (the file's ``fold`` says which explained a
        row).
    predictions
        Each fold's ``evaluation/test_predictions.tsv``.
    settings
        The attribution settings (defaults filled in).
    """
    import keras

    from peak2motif.attribution import gc_fraction, references
    from peak2motif.sequences import one_hot

    with h5py.File(contributions_h5, "r") as h5:
        attrs = _attrs(h5)
        codes, fold = h5["codes"][:], h5["fold"][:]
        region_index, prediction = h5["region_index"][:], h5["prediction"][:]
    _check_settings(attrs, settings, contributions_h5)
    tasks = list(attrs.get("tasks", []))
    outputs = list(attrs.get("outputs", tasks))
    folds = sorted(set(fold.tolist()))
    if folds and folds[-1] >= len(models):
        raise InputError(f"rows of fold {folds[-1]} but {len(models)} model file(s)",
                         path=str(contributions_h5), fix="give every fold's model.keras")
    values: dict[str, float] = {"verify_sequences": float(len(codes))}
    # 1. the model files on the stored sequences
    logits = np.zeros(prediction.shape, np.float32)
    fresh = np.zeros(prediction.shape, np.float32)
    loaded = {}
    for k in folds:
        loaded[k] = keras.models.load_model(models[k], compile=False)
        rows = np.flatnonzero(fold == k)
        logits[rows], fresh[rows] = model_outputs(loaded[k], codes[rows])
    values["verify_prediction_max_abs_diff"] = float(np.abs(fresh - prediction).max()) \
        if len(codes) else 0.0
    # 2. the evaluation stage's predictions of the same regions
    diff, n_eval = evaluation_diff(region_index, fold, prediction, outputs, predictions)
    values["verify_evaluation_regions"] = float(n_eval)
    if n_eval:
        values["verify_evaluation_max_abs_diff"] = diff
    worst_sum = worst_logit = worst_hyp = 0.0
    nonfinite = sampled = 0
    gc = {k: gc_fraction(codes[fold == k]) for k in folds}
    for t in tasks:
        # 3. the stored summation, from the file's own sequences (as TF-MoDISco reads them)
        c = contributions.read_task(contributions_h5, t)
        if not len(c.region_index):
            continue
        j = outputs.index(t)
        nonfinite += int((~np.isfinite(c.hypothetical)).sum())
        worst_sum = max(worst_sum, float(np.abs(c.actual.sum((1, 2)) - c.logit_delta).max()))
        with h5py.File(contributions_h5, "r") as h5:
            rows = h5[f"task/{t}/rows"][:]
        worst_logit = max(worst_logit, float(np.abs(c.logit - logits[rows, j]).max()))
        # 4. a sample's hypothetical contributions, recomputed with the stage's references
        pick = sample_rows(len(rows), settings["verify_sample"], settings["seed"], t)
        for k in folds:
            mine = pick[c.fold[pick] == k]
            if not len(mine):
                continue
            sample_codes = codes[rows[mine]]
            refs, _ = references(sample_codes, c.region_index[mine], settings, gc[k])
            again = recompute_hypothetical(loaded[k], one_hot(sample_codes), refs, j, settings)
            scale = float(np.abs(again).max()) or 1.0
            worst_hyp = max(worst_hyp, float(np.abs(c.hypothetical[mine] - again).max()) / scale)
        sampled += len(pick)
    values["verify_stored_summation_max_abs_error"] = worst_sum
    values["verify_nonfinite_contributions"] = float(nonfinite)
    values["verify_logit_max_abs_diff"] = worst_logit
    values["verify_hypothetical_relative_diff"] = worst_hyp
    values["verify_sample_sequences"] = float(sampled)
    return values


def read_table(path) -> dict[str, float]:
    """``{check: value}`` of a checks table (columns check, value)."""
    if not Path(path).exists():
        raise InputError("no such checks table", path=str(path),
                         fix="run the workflow up to gather_contributions first")
    t = pd.read_csv(path, sep="\t")
    return dict(zip(t["check"], t["value"], strict=True))


def verify_contributions(contributions_h5: str | os.PathLike, models: list, predictions: list,
                         job_checks: str | os.PathLike, out_checks: str | os.PathLike | None,
                         out_html: str | os.PathLike | None, settings: dict,
                         threads: int = 1) -> pd.DataFrame:
    """Verify the gathered file and write the dataset's checks table and page.

    ``job_checks`` (gather's table: the worst value of every check over the attribution and
    cross-check jobs) and the values of :func:`verify_values` make one table, written to
    ``out_checks`` (columns check, value) and, as the report's checks page, to ``out_html``.

    Raises
    ------
    checks.CheckFailed
        When any check is outside its limit; the message says what to change.
    """
    from peak2motif import explain
    from peak2motif.attribution import _set_threads, checks_html, settings_with_defaults

    s = settings_with_defaults(settings)
    _set_threads(threads)
    values = read_table(job_checks)
    mine = verify_values(contributions_h5, models, predictions, s)
    for k, v in mine.items():
        values[k] = v
    exact = explain.get_method(s["method"]).exact
    table = checks.verdicts(values, s, exact)
    log.info("verified %s:\n%s", contributions_h5,
             table[table["check"].isin(mine)].to_string(index=False))
    if out_checks is not None:
        with atomic_output(out_checks) as tmp:
            table[["check", "value"]].to_csv(tmp, sep="\t", index=False)
    if out_html is not None:
        with h5py.File(contributions_h5, "r") as h5:
            attrs = _attrs(h5)
        with atomic_output(out_html) as tmp:
            tmp.write_text(checks_html(table, s, attrs))
    checks.raise_on_failure(table)
    return table


def main(argv: list[str] | None = None) -> int:
    """``python -m peak2motif.verify results/NAME``: verify an existing results folder."""
    import yaml

    parser = argparse.ArgumentParser(
        prog="python -m peak2motif.verify",
        description="Verify results/NAME/contributions/contributions.h5 against the model "
                    "files and the evaluation; print the checks, exit 1 when one fails.")
    parser.add_argument("results", type=Path, help="a dataset's results folder, results/NAME")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    root = args.results
    config = root / "provenance" / "config.yaml"
    if not config.exists():
        raise InputError("no provenance/config.yaml in this folder", path=str(root),
                         fix="give a dataset's folder, results/NAME, of a finished run")
    from peak2motif import explain

    cfg = yaml.safe_load(config.read_text())
    attribution = dict(cfg.get("attribution") or {})
    attribution["method"] = explain.check_method(cfg.get("model"),
                                                 attribution.get("method", "auto"))
    n_folds = len(sorted((root / "folds").glob("[0-9]*")))
    folds = [root / "folds" / str(k) for k in range(n_folds)]
    table = verify_contributions(
        root / "contributions" / "contributions.h5",
        [f / "model" / "model.keras" for f in folds],
        [f / "evaluation" / "test_predictions.tsv" for f in folds],
        root / "contributions" / "job_checks.tsv", None, None, attribution)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    from peak2motif.checks import CheckFailed

    try:
        sys.exit(main())
    except (InputError, CheckFailed) as err:
        print(err, file=sys.stderr)
        sys.exit(1)
