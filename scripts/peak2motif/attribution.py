"""The attribution stage: which sequences are explained, their references, and the checks.

Every task is explained (each class of a multiclass model). A job explains one shard of one
fold: with several folds, fold k's model explains the test split of fold k, so every region
is explained by a model that never trained on it; with one fold, the model explains the
splits in ``attribution.splits`` (all of them by default). Besides the task's positives, a
sample of matched negatives (``negatives_ratio`` per positive) is explained as well: the motif
stage calibrates its motif calls against them.

References are made per sequence from a seed of (``seed``, region row), so the numbers do not
depend on how the regions are sharded. Dinucleotide shuffles keep N in place
(:func:`peak2motif.sequences.dinuc_shuffles`).

The method (``attribution.method``) comes from :mod:`peak2motif.explain`; every method
returns the same arrays. The checks run on the arrays that are written
(:mod:`peak2motif.contributions`); a failed check fails the job, saying what to change.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field

import h5py
import numpy as np
import pandas as pd

from peak2motif import checks, contributions
from peak2motif.config import with_defaults
from peak2motif.errors import InputError
from peak2motif.sequences import N_CODE, codes_from_one_hot, dinuc_shuffles, one_hot
from peak2motif.splitfiles import read_labels, read_region_index, split_info
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)


def settings_with_defaults(cfg: dict | None) -> dict:
    """The attribution settings: ``cfg`` with the schema defaults filled in."""
    defaults = with_defaults("attribution")
    unknown = set(cfg or {}) - set(defaults)
    if unknown:
        raise InputError(f"unknown key(s) {sorted(unknown)}", key="attribution",
                         fix=f"use only {', '.join(defaults)}")
    return with_defaults("attribution", cfg)


# --- references --------------------------------------------------------------------------


def _region_rng(seed: int, region: int) -> np.random.RandomState:
    return np.random.RandomState(np.random.SeedSequence([seed, region]).generate_state(1)[0])


def shuffled_references(codes: np.ndarray, region_index: np.ndarray, n: int,
                        seed: int) -> np.ndarray:
    """``n`` dinucleotide shuffles of each sequence, seeded by (seed, region row).

    Parameters
    ----------
    codes
        ``(N, L)`` uint8.
    region_index
        ``(N,)`` rows of ``regions.tsv`` (the per-sequence seeds).

    Returns
    -------
    ``(N, n, L)`` uint8; N positions stay N.
    """
    if len(codes) != len(region_index):
        raise ValueError(f"{len(codes)} sequences but {len(region_index)} region rows")
    return dinuc_shuffles(codes, (_region_rng(seed, int(r)) for r in region_index), n)


def dinucleotide_counts(codes: np.ndarray) -> np.ndarray:
    """Counts of the 25 ordered pairs over {A, C, G, T, N} in each row: ``(..., 25)``."""
    codes = np.asarray(codes, dtype=np.int64)
    flat = codes.reshape(-1, codes.shape[-1])
    pairs = flat[:, :-1] * 5 + flat[:, 1:]
    offs = np.arange(len(flat))[:, None] * 25
    counts = np.bincount((pairs + offs).ravel(), minlength=len(flat) * 25)
    return counts.reshape(codes.shape[:-1] + (25,))


def check_shuffles(codes: np.ndarray, ref_codes: np.ndarray) -> dict[str, float]:
    """Do the references differ from their input, keep its dinucleotide counts and its N?

    deeplift issue #136 reported shuffles that return the input unchanged. The stage passes
    the codes of the one-hot references the method was given (all-zero rows read as N), so
    a reference handed to the wrong sequence fails here too.

    Parameters
    ----------
    codes
        ``(N, L)`` the explained sequences.
    ref_codes
        ``(N, R, L)`` their references.

    Returns
    -------
    ``reference_identical_fraction`` (references equal to their input),
    ``reference_dinucleotide_mismatches`` (references whose dinucleotide counts differ) and
    ``reference_moved_n`` (references whose N positions differ from the input's).
    """
    identical = (ref_codes == codes[:, None, :]).all(-1)
    mismatch = (dinucleotide_counts(ref_codes) != dinucleotide_counts(codes)[:, None]).any(-1)
    moved = ((ref_codes == N_CODE) != (codes == N_CODE)[:, None, :]).any(-1)
    return {
        "reference_identical_fraction": float(identical.mean()),
        "reference_dinucleotide_mismatches": float(mismatch.sum()),
        "reference_moved_n": float(moved.sum()),
    }


def fixed_reference(kind: str, length: int, gc: float = 0.41) -> np.ndarray:
    """One reference shared by all sequences: ``(L, 4)`` float32.

    ``uniform`` is 0.25 everywhere, ``zeros`` all zero, ``gc`` the base composition of GC
    fraction ``gc`` ((1-gc)/2, gc/2, gc/2, (1-gc)/2).
    """
    rows = {"uniform": [0.25] * 4, "zeros": [0.0] * 4,
            "gc": [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]}
    if kind not in rows:
        raise InputError(f"unknown reference {kind!r}", key="attribution: reference",
                         fix="use dinuc_shuffle, uniform, zeros or gc")
    return np.tile(np.asarray(rows[kind], dtype=np.float32), (length, 1))


def _gc_counts(codes: np.ndarray) -> tuple[int, int]:
    """(G or C bases, A/C/G/T bases) in ``codes``."""
    valid = codes != N_CODE
    return int(np.isin(codes[valid], (1, 2)).sum()), int(valid.sum())


def gc_fraction(codes: np.ndarray) -> float:
    """GC fraction of the A/C/G/T bases in ``codes``."""
    gc, valid = _gc_counts(codes)
    return gc / valid if valid else 0.5


def references(codes: np.ndarray, region_index: np.ndarray, settings: dict, gc: float
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """One-hot references ``(N, R, L, 4)`` and their codes (None for a fixed reference)."""
    if settings["reference"] == "dinuc_shuffle":
        ref_codes = shuffled_references(codes, region_index, settings["n_references"],
                                        settings["seed"])
        refs = one_hot(ref_codes)
        refs[np.broadcast_to((codes == N_CODE)[:, None, :], ref_codes.shape)] = 0.0
        return refs, ref_codes
    fixed = fixed_reference(settings["reference"], codes.shape[1], gc)
    refs = np.broadcast_to(fixed, (len(codes), 1) + fixed.shape).copy()
    refs[(codes == N_CODE)[:, None, :]] = 0.0  # N stays N in a fixed reference too
    return refs, None


# --- selection ---------------------------------------------------------------------------


@dataclass
class Selection:
    """The sequences one job explains, and which of them each task explains.

    ``codes`` is None until :func:`read_codes` reads them: a job selects over the labels of
    the whole fold (small), takes its shard, and reads only the shard's sequences.
    """

    codes: np.ndarray | None  # (N, L) uint8
    labels: np.ndarray  # (N, T)
    region_index: np.ndarray  # (N,)
    tasks: list[str]
    task_type: str
    explained: dict[str, np.ndarray]  # task -> rows (into the arrays above)
    positive: dict[str, np.ndarray]  # task -> bool per explained row
    paths: list[str] = field(default_factory=list)  # the split files the rows come from
    source: np.ndarray | None = None  # (N, 2): split file number and row in that file

    def __len__(self) -> int:
        return len(self.region_index)


def explained_tasks(tasks: list[str], task_type: str) -> list[str]:
    """Tasks (output columns) that get contributions: all but multiclass's background."""
    return [t for t in tasks if not (task_type == "multiclass" and t == "background")]


def output_column(tasks: list[str], task: str) -> int:
    """The model's output column of ``task`` (``tasks``: the split files' task order)."""
    return tasks.index(task)


def select(split_paths: list[str | os.PathLike], *, negatives_ratio: float, seed: int,
           max_positives: int | None = None, codes: bool = True) -> Selection:
    """Positives of every task and a seeded sample of negatives from the given split files.

    A row is a positive of task t when its label is > 0 (any peak for regression); negatives
    are rows with no positive label (the background class for multiclass). Each task
    explains its positives (at most ``max_positives``, a seeded sample) and
    ``ceil(negatives_ratio x positives)`` negatives; rows are in region order. The choice
    reads only labels and region rows; ``codes=False`` leaves the sequences unread (see
    :func:`read_codes`).
    """
    paths = [str(p) for p in split_paths]
    info = split_info(paths[0])
    tasks, task_type = info.tasks, info.task_type
    labels = np.concatenate([read_labels(p) for p in paths])
    rows_of = [read_region_index(p) for p in paths]
    sizes = [len(r) for r in rows_of]
    region_index = np.concatenate(rows_of)
    source = np.column_stack([np.repeat(np.arange(len(paths)), sizes),
                              np.concatenate([np.arange(n) for n in sizes])]).astype(np.int64)
    order = np.argsort(region_index, kind="stable")
    labels, region_index, source = labels[order], region_index[order], source[order]
    rng = np.random.default_rng([seed, 7])
    names = explained_tasks(tasks, task_type)
    cols = [tasks.index(t) for t in names]
    is_neg = ~(labels[:, cols] > 0).any(1)
    neg_rows = np.flatnonzero(is_neg)
    explained, positive = {}, {}
    for t, j in zip(names, cols, strict=True):
        pos = np.flatnonzero(labels[:, j] > 0)
        if max_positives and len(pos) > max_positives:
            pos = np.sort(rng.choice(pos, max_positives, replace=False))
        k = min(len(neg_rows), math.ceil(negatives_ratio * len(pos)))
        neg = np.sort(rng.choice(neg_rows, k, replace=False)) if k else neg_rows[:0]
        rows = np.concatenate([pos, neg])
        by = np.argsort(rows, kind="stable")
        explained[t] = rows[by]
        positive[t] = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])[by]
    used = np.unique(np.concatenate(list(explained.values()))) if explained else np.zeros(
        0, np.int64)
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    sel = Selection(None, labels[used], region_index[used], tasks, task_type,
                    {t: remap[r] for t, r in explained.items()}, positive, paths,
                    source[used])
    return read_codes(sel) if codes else sel


def shard_of(sel: Selection, shard: int, n_shards: int) -> Selection:
    """Shard ``shard`` of ``n_shards``: contiguous blocks of rows in region order."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range for {n_shards} shards")
    keep = np.array_split(np.arange(len(sel)), n_shards)[shard]
    remap = np.full(len(sel), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    explained, positive = {}, {}
    for t, rows in sel.explained.items():
        inside = remap[rows] >= 0
        explained[t] = remap[rows[inside]]
        positive[t] = sel.positive[t][inside]
    return Selection(None if sel.codes is None else sel.codes[keep], sel.labels[keep],
                     sel.region_index[keep], sel.tasks, sel.task_type, explained, positive,
                     sel.paths, None if sel.source is None else sel.source[keep])


def _blocks(path: str, rows: np.ndarray, block: int = 4096):
    """(positions in ``rows``, codes) of one split file, a block of file rows at a time."""
    with h5py.File(path, "r") as h5:
        ds = h5["codes"]
        which = rows // block
        for b in np.unique(which):
            at = np.flatnonzero(which == b)
            lo = int(b) * block
            chunk = ds[lo:min(lo + block, ds.shape[0])]
            yield at, chunk[rows[at] - lo]


def _selected_blocks(sel: Selection):
    """(rows of ``sel``, their codes), read from its split files a block at a time."""
    for f, path in enumerate(sel.paths):
        mine = np.flatnonzero(sel.source[:, 0] == f)
        for at, chunk in _blocks(path, sel.source[mine, 1]):
            yield mine[at], chunk


def read_codes(sel: Selection) -> Selection:
    """``sel`` with its sequences read: only its own rows, a block at a time, so a shard's
    memory is that of the shard, not of the fold."""
    if sel.codes is not None:
        return sel
    length = split_info(sel.paths[0]).sequence_length if sel.paths else 0
    codes = np.empty((len(sel), length), np.uint8)
    for rows, chunk in _selected_blocks(sel):
        codes[rows] = chunk
    sel.codes = codes
    return sel


def gc_of_selection(sel: Selection) -> float:
    """:func:`gc_fraction` of every sequence of ``sel``, read a block at a time (integer
    counts, so the value does not depend on the blocks)."""
    if sel.codes is not None:
        return gc_fraction(sel.codes)
    gc = valid = 0
    for _, chunk in _selected_blocks(sel):
        g, v = _gc_counts(chunk)
        gc, valid = gc + g, valid + v
    return gc / valid if valid else 0.5


# --- the job -----------------------------------------------------------------------------


def _set_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF already initialised in this process; keep its setting
        pass


def method_options(settings: dict, threads: int) -> dict:
    """The options of the configured method, from the attribution settings."""
    method = settings["method"]
    if method == "integrated_gradients":
        return {"steps": settings["ig_steps"], "rule": settings["ig_rule"]}
    if method == "deeplift_package":
        return {"mode": settings["mode"], "threads": threads}
    return {}


def explain_task(model, codes, region_index, task_index, settings, gc,
                 threads) -> tuple[dict, dict[str, float]]:
    """Contributions of one task for ``codes``, in chunks; and the job's check values."""
    from peak2motif import explain

    chunk = max(1, int(settings["chunk_sequences"]))
    parts: dict[str, list] = {k: [] for k in ("hypothetical", "logit", "logit_delta")}
    values: dict[str, float] = {}
    worst_pair = worst_stored = 0.0
    shuffle_stats = []
    for lo in range(0, len(codes), chunk):
        c, ri = codes[lo:lo + chunk], region_index[lo:lo + chunk]
        refs, _ = references(c, ri, settings, gc)
        if settings["reference"] == "dinuc_shuffle":
            # the one-hot references the method is given, not the codes they were made from
            shuffle_stats.append((len(c), check_shuffles(c, codes_from_one_hot(refs))))
        res = explain.explain(model, one_hot(c), refs, method=settings["method"],
                              task_index=task_index, batch_size=settings["batch_size"],
                              **method_options(settings, threads))
        delta = res.logit[:, None] - res.logit_ref
        stored = (res.hypothetical * one_hot(c)).sum((1, 2))
        worst_pair = max(worst_pair, float(np.abs(res.contrib_sum - delta).max()))
        worst_stored = max(worst_stored, float(np.abs(stored - delta.mean(1)).max()))
        parts["hypothetical"].append(res.hypothetical)
        parts["logit"].append(res.logit)
        parts["logit_delta"].append(delta.mean(1))
        if "completeness_bound" in res.diagnostics:
            values["completeness_bound"] = min(values.get("completeness_bound", np.inf),
                                               float(res.diagnostics["completeness_bound"]))
    out = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in parts.items()}
    values["summation_to_delta_max_abs_error"] = worst_pair
    values["stored_summation_max_abs_error"] = worst_stored
    values["nonfinite_contributions"] = float((~np.isfinite(out["hypothetical"])).sum()) \
        if len(codes) else 0.0
    if shuffle_stats:
        n = sum(k for k, _ in shuffle_stats)
        values["reference_identical_fraction"] = sum(
            k * s["reference_identical_fraction"] for k, s in shuffle_stats) / n
        for key in ("reference_dinucleotide_mismatches", "reference_moved_n"):
            values[key] = sum(s[key] for _, s in shuffle_stats)
    return out, values


def compute_contributions(
    model_path: str | os.PathLike,
    split_paths: dict[str, str | os.PathLike],
    out_h5: str | os.PathLike,
    out_checks: str | os.PathLike,
    settings: dict | None = None,
    *,
    fold: int = 0,
    n_folds: int = 1,
    shard: int = 0,
    threads: int = 1,
) -> pd.DataFrame:
    """Explain one shard of one fold's selection and write it with its checks.

    Parameters
    ----------
    model_path
        The fold's Keras model (``.keras``; the ``.h5`` next to it for the deeplift package).
    split_paths
        ``{"train": path, "valid": path, "test": path}``: the fold's split files.

    Returns
    -------
    The checks table (check, value, threshold, status).

    Raises
    ------
    checks.CheckFailed
        When a check is outside its limit; the message says what to change.
    """
    import keras

    from peak2motif import explain

    s = settings_with_defaults(settings)
    _set_threads(threads)
    t0 = time.perf_counter()
    splits = ["test"] if n_folds > 1 else list(s["splits"])
    unknown = [x for x in splits if x not in split_paths]
    if unknown:
        raise InputError(f"unknown split(s) {unknown}", key="attribution: splits",
                         fix="use train, valid and/or test")
    sel = select([split_paths[x] for x in splits], negatives_ratio=s["negatives_ratio"],
                 seed=s["seed"], max_positives=s["max_sequences"], codes=False)
    # of the fold's whole selection, so that a fixed gc reference is the same in every shard
    gc = gc_of_selection(sel) if s["reference"] != "dinuc_shuffle" else 0.5
    sel = read_codes(shard_of(sel, shard, s["shards"]))
    model = keras.models.load_model(model_path, compile=False)
    logits = checks.keras_logits(model, one_hot(sel.codes), s["batch_size"] or 256) \
        if len(sel.codes) else np.zeros((0, len(sel.tasks)), np.float32)
    pred = np.asarray(model.layers[-1](logits), dtype=np.float32)  # the output activation
    values: dict[str, float] = {"n_sequences": float(len(sel.codes)),
                                "n_references": float(s["n_references"]
                                                      if s["reference"] == "dinuc_shuffle"
                                                      else 1)}
    tasks_out = {}
    for t, rows in sel.explained.items():
        j = output_column(sel.tasks, t)
        arrays, v = explain_task(model, sel.codes[rows], sel.region_index[rows], j, s, gc,
                                 threads)
        tasks_out[t] = {**arrays, "rows": rows, "positive": sel.positive[t]}
        v["logit_max_abs_diff"] = float(np.abs(arrays["logit"] - logits[rows, j]).max()) \
            if len(rows) else 0.0
        checks.merge_values(values, v)
        values[f"n_positives_{t}"] = float(sel.positive[t].sum())
    values["seconds"] = time.perf_counter() - t0
    log.info("explained %d sequences (fold %d, shard %d of %d) with %s in %.1f s",
             len(sel.codes), fold, shard, s["shards"], s["method"], values["seconds"])
    table = checks.verdicts(values, s, explain.get_method(s["method"]).exact)
    log.info("checks:\n%s", table.to_string(index=False))
    _write_shard(out_h5, out_checks, sel, pred, tasks_out, table, s, fold, shard,
                 int(values["n_references"]))
    checks.raise_on_failure(table)
    return table


def _write_shard(out_h5, out_checks, sel: Selection, pred, tasks_out, table, s, fold: int,
                 shard: int, n_references: int) -> None:
    with atomic_output(out_h5) as tmp:
        contributions.write(
            tmp,
            {"codes": sel.codes, "region_index": sel.region_index,
             "fold": np.full(len(sel.codes), fold, dtype=np.int16), "labels": sel.labels,
             "prediction": pred},
            tasks_out,
            {"method": s["method"], "reference": s["reference"], "n_references": n_references,
             "seed": s["seed"], "tasks": explained_tasks(sel.tasks, sel.task_type),
             "outputs": list(sel.tasks), "task_type": sel.task_type, "shard": shard})
    with atomic_output(out_checks) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


# --- cross-checks on a sample (their own job) --------------------------------------------


def crosscheck_values(model, onehot: np.ndarray, refs: np.ndarray,
                      settings: dict, task_index: int, model_cfg: dict,
                      threads: int = 1) -> dict[str, float]:
    """The cross-check values of one task on a sample (see :func:`crosscheck`)."""
    from peak2motif import explain
    from peak2motif.explain.checks import shap_can_explain
    from peak2motif.explain.package import unsupported as package_unsupported

    s, options = settings, method_options(settings, threads)
    res = explain.explain(model, onehot, refs, method=s["method"], task_index=task_index,
                          batch_size=s["batch_size"], **options)
    actual = (res.hypothetical * onehot).sum(-1)
    values = {}
    # a failed DeepExplainer leaves its gradient overrides registered and breaks every later
    # gradient of the process, so shap only sees models it can explain
    if shap_can_explain(model):
        shap = checks.shap_contributions(model, onehot, refs, task_index=task_index)
        values["shap_correlation"] = checks.correlation(shap.sum(-1), actual)
    second = explain.independent_hypothetical_check(model, onehot, s["method"], task_index,
                                                    **options)
    values["independent_hypothetical_relative_diff"] = second.relative
    if s["method"] == "integrated_gradients":
        # convergence: the same sample and references at twice the steps
        finer = explain.explain(model, onehot, refs, method=s["method"], task_index=task_index,
                                batch_size=s["batch_size"],
                                **{**options, "steps": 2 * options["steps"]}).hypothetical
        scale = float(np.abs(finer).max()) or 1.0
        values["ig_convergence_relative_diff"] = float(
            np.abs(finer - res.hypothetical).max()) / scale
    if s["method"] == "deeplift" and not package_unsupported(model_cfg):
        package = explain.explain(model, onehot, refs, method="deeplift_package",
                                  task_index=task_index, mode="Rescale", threads=threads)
        scale = float(np.abs(package.hypothetical).max()) or 1.0
        values["package_relative_diff"] = float(
            np.abs(package.hypothetical - res.hypothetical).max()) / scale
    if s["ism_sample"]:
        k = min(s["ism_sample"], len(onehot))
        ism = checks.ism_scores(model, onehot[:k], task_index=task_index)
        values["ism_correlation"] = checks.correlation(ism, actual[:k])
    return values


def crosscheck(model_path: str | os.PathLike, split_paths: dict[str, str | os.PathLike],
               out_checks: str | os.PathLike, settings: dict, model_cfg: dict, *,
               n_folds: int = 1, threads: int = 1) -> pd.DataFrame:
    """Independent checks of the method on the first ``crosscheck_sample`` positives of
    each task (the same references as the stage):

    - ``ig_convergence_relative_diff`` (integrated gradients): the largest change of the
      hypothetical contributions when the steps double, relative to their largest value;

    - ``shap_correlation``: per-position contributions against shap DeepExplainer (the same
      Rescale rule; a limit for DeepLIFT methods, recorded for integrated gradients);
    - ``independent_hypothetical_max_abs_diff``: the hypothetical contributions, which
      TF-MoDISco reads, from a second implementation (all four bases, not only the observed
      one);
    - ``package_max_abs_diff``: native DeepLIFT against the deeplift package where the
      package can convert the model;
    - ``ism_correlation``: in-silico mutagenesis (recorded).
    """
    import keras

    from peak2motif import explain

    s = settings_with_defaults(settings)
    model_cfg = with_defaults("model", model_cfg)
    _set_threads(threads)
    values: dict[str, float] = {}
    n = s["crosscheck_sample"]
    if n:
        splits = ["test"] if n_folds > 1 else list(s["splits"])
        sel = select([split_paths[x] for x in splits], negatives_ratio=0, seed=s["seed"],
                     max_positives=n)
        model = keras.models.load_model(model_path, compile=False)
        gc = gc_fraction(sel.codes) if len(sel.codes) else 0.5
        for t, rows in sel.explained.items():
            if not len(rows):
                continue
            j = output_column(sel.tasks, t)
            codes, region = sel.codes[rows[:n]], sel.region_index[rows[:n]]
            refs, _ = references(codes, region, s, gc)
            checks.merge_values(values, crosscheck_values(
                model, one_hot(codes), refs, s, j, model_cfg, threads))
            values[f"crosscheck_sequences_{t}"] = float(len(codes))
    exact = explain.get_method(s["method"]).exact
    if not exact and "shap_correlation" in values:  # another rule: recorded, no limit
        values["shap_correlation_recorded"] = values.pop("shap_correlation")
    table = checks.verdicts(values, s, exact)
    log.info("cross-checks:\n%s", table.to_string(index=False))
    with atomic_output(out_checks) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    checks.raise_on_failure(table)
    return table


# --- gathering -----------------------------------------------------------------------------


def gather_contributions(shards: list[str | os.PathLike], check_tables: list,
                         crosscheck_tables: list, regions_tsv: str | os.PathLike,
                         out_h5: str | os.PathLike, out_checks: str | os.PathLike,
                         out_html: str | os.PathLike | None, out_png: str | os.PathLike,
                         settings: dict, planted_tsv: str | os.PathLike | None = None
                         ) -> pd.DataFrame:
    """One contributions file (rows by region) and one checks table: the worst value of each
    check over all jobs, plus the interpretability AUROC on simulated data.

    In the workflow the table is ``job_checks.tsv`` and ``out_html`` is None: the rule
    verify_contributions adds its checks of the gathered file and writes the dataset's
    ``checks.tsv`` and checks page (:func:`peak2motif.verify.verify_contributions`).
    """
    from peak2motif import explain
    from peak2motif.regions import read_regions

    s = settings_with_defaults(settings)
    with atomic_output(out_h5) as tmp:
        attrs = contributions.gather(shards, tmp)
    values: dict[str, float] = {}
    for path in [*check_tables, *crosscheck_tables]:
        t = pd.read_csv(path, sep="\t")
        checks.merge_values(values, dict(zip(t["check"], t["value"], strict=True)))
    values["jobs"] = float(len(check_tables))
    first = attrs["tasks"][0] if attrs.get("tasks") else None
    if first is not None and planted_tsv is not None:
        c = contributions.read_task(out_h5, first, positives_only=True)
        regions = read_regions(regions_tsv)
        windows = regions.iloc[c.region_index][["chrom", "start"]].reset_index(drop=True)
        values["interpretability_auroc"] = checks.interpretability_auroc(
            c.actual, windows, pd.read_csv(planted_tsv, sep="\t"))
    table = checks.verdicts(values, s, explain.get_method(attrs.get("method", s["method"]))
                            .exact)
    with atomic_output(out_checks) as tmp:
        table[["check", "value"]].to_csv(tmp, sep="\t", index=False)
    if out_html is not None:
        with atomic_output(out_html) as tmp:
            tmp.write_text(checks_html(table, s, attrs))
    with atomic_output(out_png) as tmp:
        if first is None:
            plot_contributions(np.zeros((0, 1, 4)), np.zeros(0), tmp)
        else:
            c = contributions.read_task(out_h5, first, positives_only=True)
            with h5py.File(out_h5, "r") as h5:
                rows = h5[f"task/{first}/rows"][:][h5[f"task/{first}/positive"][:]]
                score = h5["prediction"][:][rows, attrs["tasks"].index(first)]
            best = np.argsort(-score, kind="stable")[: s["plot_sequences"]]
            plot_contributions(c.actual[best], score[best], tmp, n=s["plot_sequences"])
    checks.raise_on_failure(table)
    return table


def checks_html(table: pd.DataFrame, settings: dict, attrs: dict) -> str:
    """The checks table as a page for the report."""
    from peak2motif.presentation import checks_page

    return checks_page(table, attrs.get("method", settings["method"]), settings["reference"],
                       attrs.get("n_references", ""))


def plot_contributions(actual: np.ndarray, score: np.ndarray, out_png,
                       n: int = 4, width: int = 100) -> None:
    """Logos of the actual contributions of the first ``n`` sequences.

    Each panel shows ``width`` bp centred on the strongest ``width``-bp stretch of the sequence.
    """
    import logomaker

    from peak2motif.presentation import pyplot

    plt = pyplot()
    n = max(1, min(n, len(actual)))
    length = actual.shape[1]
    width = min(width, length)
    fig, axes = plt.subplots(n, 1, figsize=(14, 1.9 * n), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        if i >= len(actual):
            ax.axis("off")
            ax.text(0.5, 0.5, "no sequence was explained", ha="center")
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
