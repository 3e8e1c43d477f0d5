"""Tiny split files with a planted motif, and training runs in a fresh process.

Positives carry the GATA-like site ``AGATAAGA`` (on either strand) at a random position;
negatives are random sequence. Large enough for a small CNN to learn, small enough for CI.

Run as a script (``python training_fixtures.py SPEC.json``), this module trains once as
:func:`run_in_subprocess` describes, so resume tests can compare runs made in separate
processes: an in-process comparison would share TensorFlow's state and thread pools.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from peak2motif.sequences import encode
from peak2motif.splitfiles import write_split

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

MOTIF = "AGATAAGA"
MOTIF2 = "CCGCGAGG"


def planted_codes(n: int, length: int, positive: np.ndarray, rng: np.random.Generator,
                  motif: str = MOTIF) -> np.ndarray:
    """Random codes ``(n, length)``; rows where ``positive`` is true carry ``motif``."""
    codes = rng.integers(0, 4, size=(n, length), dtype=np.uint8)
    site = encode(motif)
    rc_site = (3 - site)[::-1]
    for i in np.flatnonzero(positive):
        pos = rng.integers(0, length - len(site))
        codes[i, pos:pos + len(site)] = site if rng.random() < 0.5 else rc_site
    return codes


def make_splits(folder: Path, task_type: str = "binary", n: tuple[int, int, int] = (600, 200, 200),
                length: int = 100, seed: int = 0, chunk_rows: int = 64) -> dict[str, Path]:
    """Write train/valid/test split files for ``task_type``; return their paths by split."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    offset = 0
    for split, size in zip(("train", "valid", "test"), n, strict=True):
        if task_type in ("binary", "regression"):
            pos = rng.random(size) < 0.5
            codes = planted_codes(size, length, pos, rng)
            labels = pos[:, None].astype(np.float32)
            if task_type == "regression":
                labels = labels * 2.0 + rng.normal(0, 0.1, (size, 1)).astype(np.float32)
            tasks = ["peaks"]
        else:
            a, b = rng.random(size) < 0.5, rng.random(size) < 0.5
            if task_type == "multiclass":
                cls = rng.integers(0, 3, size)
                a, b = cls == 0, cls == 1
            codes = planted_codes(size, length, a, rng, MOTIF)
            half = length // 2
            codes[:, half:] = planted_codes(size, length - half, b, rng, MOTIF2)
            if task_type == "multiclass":
                labels = np.eye(3, dtype=np.float32)[cls]
                tasks = ["gata", "other", "none"]
            else:
                labels = np.stack([a, b], 1).astype(np.float32)
                tasks = ["gata", "other"]
        path = folder / f"{split}.h5"
        write_split(path, codes, labels.astype(np.float32), np.arange(offset, offset + size),
                    tasks, task_type, chunk_rows=chunk_rows)
        offset += size
        paths[split] = path
    return paths


class RaiseAfterEpoch(keras.callbacks.Callback):
    """Raise after epoch ``k`` (0-based) ends, after its checkpoint: a job killed there."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.k:
            raise KeyboardInterrupt(f"simulated kill after epoch {epoch}")


class SleepEachBatch(keras.callbacks.Callback):
    """Sleep after every training batch: makes an epoch long enough to be signalled in."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def run_in_subprocess(spec: dict[str, Any], wait: bool = True):
    """Train in a fresh Python process as ``spec`` says.

    ``spec`` holds ``train``, ``valid``, ``model``, ``training`` (the config sections with
    defaults), ``threads``, ``checkpoint_dir``, ``out`` (a path prefix) and optionally
    ``raise_after`` (see :class:`RaiseAfterEpoch`) and ``sleep_each_batch`` (seconds). On
    success the process writes ``<out>.npz`` (every model and optimizer variable, in order,
    seed generator states included) and ``<out>.json`` (the history).

    Returns the finished :class:`subprocess.CompletedProcess`, or with ``wait=False`` the
    running :class:`subprocess.Popen` (stdout and stderr piped, text).
    """
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    spec_path = out.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec, default=str))
    cmd = [sys.executable, __file__, str(spec_path)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SCRIPTS), str(Path(__file__).parent)]))
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def read_run(out: str | os.PathLike) -> tuple[list[np.ndarray], list[dict]]:
    """The variables and history that a :func:`run_in_subprocess` run wrote to ``out``."""
    with np.load(f"{out}.npz") as npz:
        variables = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    return variables, json.loads(Path(f"{out}.json").read_text())


def _main(spec_path: str) -> None:
    from peak2motif.train import train_model

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    spec = json.loads(Path(spec_path).read_text())
    callbacks: list[keras.callbacks.Callback] = []
    if spec.get("raise_after") is not None:
        callbacks.append(RaiseAfterEpoch(spec["raise_after"]))
    if spec.get("sleep_each_batch"):
        callbacks.append(SleepEachBatch(spec["sleep_each_batch"]))
    model, history = train_model(spec["train"], spec["valid"], spec["model"], spec["training"],
                                 threads=spec["threads"], checkpoint_dir=spec["checkpoint_dir"],
                                 extra_callbacks=callbacks)
    variables = [keras.ops.convert_to_numpy(v) for v in
                 [*model.variables, *model.optimizer.variables]]
    np.savez(f"{spec['out']}.npz", *variables)
    # json writes floats with repr, which reads back bit for bit
    Path(f"{spec['out']}.json").write_text(json.dumps(history.to_dict("records"), default=float))


if __name__ == "__main__":
    _main(sys.argv[1])
