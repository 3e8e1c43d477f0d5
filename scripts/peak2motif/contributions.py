"""The contributions file: what the attribution stage writes and the motif stage reads.

``results/NAME/contributions/contributions.h5`` (and each shard
``results/NAME/folds/K/contributions/shard_S.h5``) holds:

- ``codes``         ``(N, L)`` uint8, the explained sequences (see :mod:`peak2motif.sequences`).
- ``region_index``  ``(N,)`` int64, rows of ``regions.tsv``.
- ``fold``          ``(N,)`` int16, the fold whose model explained the sequence (it never
  trained on it when there are several folds).
- ``labels``        ``(N, T)`` float32 and ``prediction`` ``(N, T)`` float32 (model outputs,
  after the output activation).
- ``task/<task>/``  one group per explained task (multiclass: per class):
  ``rows`` ``(n,)`` int64 (rows of the arrays above), ``hypothetical`` ``(n, L, 4)``
  float32 (hypothetical contributions to the task's logit, mean over references;
  TF-MoDISco's input), ``logit`` ``(n,)``, ``logit_delta`` ``(n,)`` (mean over references of
  logit(x) - logit(reference): what the contributions of the observed bases sum to) and
  ``positive`` ``(n,)`` bool (labelled positive for the task; the others are matched
  negatives, explained for the motif stage's null).
- attributes: ``method``, ``reference``, ``n_references``, ``seed``, ``tasks`` (the
  explained tasks), ``outputs`` (the model's output columns in order: the columns of
  ``labels`` and ``prediction``; multiclass adds ``background``), ``task_type``.

The contribution of the observed base is ``hypothetical * one_hot(codes)``; it is not stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py
import numpy as np

from peak2motif.errors import InputError
from peak2motif.sequences import one_hot

ARRAYS = ("codes", "region_index", "fold", "labels", "prediction")
TASK_ARRAYS = ("rows", "hypothetical", "logit", "logit_delta", "positive")


@dataclass
class TaskContributions:
    """The contributions of one task, in the file's row order."""

    task: str
    onehot: np.ndarray  # (n, L, 4) float32
    hypothetical: np.ndarray  # (n, L, 4) float32
    region_index: np.ndarray  # (n,) int64
    positive: np.ndarray  # (n,) bool
    logit: np.ndarray  # (n,)
    logit_delta: np.ndarray  # (n,)
    fold: np.ndarray  # (n,)

    @property
    def actual(self) -> np.ndarray:
        """``(n, L, 4)``: the contribution of each observed base (zero elsewhere)."""
        return self.hypothetical * self.onehot

    def subset(self, keep: np.ndarray) -> TaskContributions:
        return TaskContributions(self.task, self.onehot[keep], self.hypothetical[keep],
                                 self.region_index[keep], self.positive[keep],
                                 self.logit[keep], self.logit_delta[keep], self.fold[keep])


def write(path: str | os.PathLike, arrays: dict, tasks: dict[str, dict], attrs: dict) -> None:
    """Write a contributions file (``arrays`` as :data:`ARRAYS`, ``tasks[name]`` as
    :data:`TASK_ARRAYS`)."""
    with h5py.File(path, "w") as h5:
        for name in ARRAYS:
            h5.create_dataset(name, data=np.asarray(arrays[name]))
        for task, parts in tasks.items():
            g = h5.create_group(f"task/{task}")
            for name in TASK_ARRAYS:
                arr = np.asarray(parts[name])
                if name == "hypothetical" and len(arr):
                    g.create_dataset(name, data=arr.astype(np.float32), compression="gzip",
                                     compression_opts=1,
                                     chunks=(min(64, len(arr)),) + arr.shape[1:])
                else:
                    g.create_dataset(name, data=arr)
        h5.attrs.update(attrs)


def task_names(path: str | os.PathLike) -> list[str]:
    with h5py.File(path, "r") as h5:
        return list(h5["task"]) if "task" in h5 else []


def read_task(path: str | os.PathLike, task: str, positives_only: bool = False
              ) -> TaskContributions:
    """The contributions of one task (optionally its positives only)."""
    with h5py.File(path, "r") as h5:
        if f"task/{task}" not in h5:
            raise InputError(f"no contributions for task '{task}' (it has "
                             f"{', '.join(h5.get('task', {})) or 'none'})", path=str(path),
                             fix="rerun the attribution stage (rule compute_contributions)")
        g = h5[f"task/{task}"]
        keep = g["positive"][:] if positives_only else np.ones(len(g["rows"]), bool)
        rows = g["rows"][:][keep]
        order = np.argsort(rows, kind="stable")
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        # h5py needs increasing indices; read sorted, then restore the file's order
        codes = h5["codes"][np.sort(rows)][inv] if len(rows) else np.zeros(
            (0, h5["codes"].shape[1]), np.uint8)
        hyp = g["hypothetical"][:][keep]
        return TaskContributions(
            task=task, onehot=one_hot(codes), hypothetical=hyp.astype(np.float32),
            region_index=h5["region_index"][:][rows], positive=g["positive"][:][keep],
            logit=g["logit"][:][keep], logit_delta=g["logit_delta"][:][keep],
            fold=h5["fold"][:][rows])


def row_offsets(sizes: list[int]) -> np.ndarray:
    """Where each shard's rows start in the concatenation of the shards: ``(len(sizes),)``."""
    return np.cumsum([0, *sizes])[:-1]


def _read_shard(path, expected_attrs: dict | None) -> tuple[dict, dict]:
    """The attributes and arrays of one shard, checked for internal consistency."""
    with h5py.File(path, "r") as h5:
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in
                 h5.attrs.items()}
        attrs.pop("shard", None)
        if expected_attrs is not None and attrs != expected_attrs:
            raise InputError("shards were made with different settings", path=str(path),
                             fix="delete the contributions folders and rerun")
        missing = [k for k in ARRAYS if k not in h5]
        if missing:
            raise InputError(f"not a contributions file: no {', '.join(missing)}",
                             path=str(path), fix="delete it and rerun compute_contributions")
        part = {"arrays": {k: h5[k][:] for k in ARRAYS},
                "tasks": {t: {k: h5[f"task/{t}/{k}"][:] for k in TASK_ARRAYS}
                          for t in h5.get("task", {})}}
    n = len(part["arrays"]["codes"])
    for k, v in part["arrays"].items():
        if len(v) != n:
            raise InputError(f"'{k}' has {len(v)} rows, 'codes' {n}", path=str(path),
                             fix="delete it and rerun compute_contributions")
    for t, d in part["tasks"].items():
        rows = d["rows"]
        bad = [k for k in TASK_ARRAYS if len(d[k]) != len(rows)]
        if bad or (len(rows) and (rows.min() < 0 or rows.max() >= n
                                  or len(np.unique(rows)) != len(rows))):
            raise InputError(f"task '{t}': its rows are not distinct rows of the file's "
                             f"{n} sequences" + (f" ({', '.join(bad)} of another length)"
                                                 if bad else ""),
                             path=str(path), fix="delete it and rerun compute_contributions")
    return attrs, part


def gather(paths: list[str | os.PathLike], out: str | os.PathLike) -> dict:
    """Concatenate shard files into one, rows ordered by region; return the attributes.

    Shards must agree on their attributes (method, references, tasks); rows are sorted by
    ``region_index`` so the result does not depend on how the work was sharded. Every input
    is checked, and so is the result (each task row still points to the region it had in
    its shard), before ``out`` is written: a failure raises :class:`InputError` and writes
    nothing.
    """
    parts, attrs = [], None
    for p in paths:
        a, part = _read_shard(p, attrs)
        attrs = a if attrs is None else attrs
        parts.append(part)
    offsets = row_offsets([len(p["arrays"]["codes"]) for p in parts])
    arrays = {k: np.concatenate([p["arrays"][k] for p in parts]) for k in ARRAYS}
    order = np.argsort(arrays["region_index"], kind="stable")
    new_row = np.empty_like(order)
    new_row[order] = np.arange(len(order))
    arrays = {k: v[order] for k, v in arrays.items()}
    tasks = {}
    for t in (attrs or {}).get("tasks", []):
        pieces = [(off, p["tasks"][t], p, path) for off, p, path in
                  zip(offsets, parts, paths, strict=True) if t in p["tasks"]]
        if not pieces:
            continue
        for off, d, part, path in pieces:
            # the gathered row of each task row must hold the region it had in its shard
            at = off + d["rows"]
            if len(at) and (at.max() >= len(new_row) or not np.array_equal(
                    arrays["region_index"][new_row[at]],
                    part["arrays"]["region_index"][d["rows"]])):
                raise InputError(f"task '{t}': gathered rows do not point to the regions "
                                 "they had in this shard (a shard offset is wrong)",
                                 path=str(path), fix="nothing was written; this is a bug in "
                                 "the gather, please report it")
        rows = np.concatenate([new_row[off + d["rows"]] for off, d, _, _ in pieces])
        by = np.argsort(rows, kind="stable")
        tasks[t] = {k: np.concatenate([d[k] for _, d, _, _ in pieces])[by]
                    for k in TASK_ARRAYS}
        tasks[t]["rows"] = rows[by]
        if len(np.unique(rows)) != len(rows):
            raise InputError(f"task '{t}' explains some region twice", path=str(out),
                             fix="nothing was written; delete the contributions folders and "
                             "rerun")
    write(out, arrays, tasks, attrs or {})
    return attrs or {}
