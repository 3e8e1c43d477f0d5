"""Training: tf.data streaming from the split files, callbacks, checkpoints and resume.

Data pipeline
-------------
The split files (see :mod:`peak2motif.sequences`) hold ``codes`` ``(N, L)`` uint8. Training
reads them from disk in *shuffle windows*: whole HDF5 chunks in a random order, read as
contiguous slices (fast), concatenated up to ``shuffle_window`` rows and shuffled. Memory is
bounded by the window, not by N. A Python generator yields batches of codes; the tf.data map
turns them into one-hot ``(B, L, 4)`` float32 and applies random reverse complements. The
generator's order and the augmentation depend only on ``(seed, epoch, batch)``, so a resumed
run sees exactly the batches that an uninterrupted run would have seen.

Checkpoints and resume
----------------------
After every epoch, ``checkpoint_dir`` gets the weights with the optimizer state (its
iteration counter and learning rate included), and ``state.json``: the next epoch, the
history so far, the state of early stopping and of plateau decay, the state of every random
number generator the model draws from (:func:`rng_state`), whether early stopping has ended
training, and a fingerprint of the settings and input files. A rerun with the same
fingerprint continues from there and ends bit for bit where an uninterrupted run ends (same
thread count). The folder is not a Snakemake output, so Snakemake does not delete it when a
killed job's outputs are cleaned up; it is removed after a successful run. Keras's
BackupAndRestore saves only weights and the epoch number (early stopping would restart its
patience and lose its best weights), and ``save_weights`` leaves out the dropout layers'
seed generators, so this part is written by hand.

SIGTERM (what SLURM sends on preemption or timeout) or SIGINT stops training at the next
batch: the unfinished epoch is abandoned, the checkpoint of the last finished one stays, and
:class:`TrainingInterrupted` ends the process with status 128 + the signal number.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from peak2motif.errors import InputError
from peak2motif.model import build_model, compile_model, transfer_weights
from peak2motif.splitfiles import SplitInfo, read_labels, split_info
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, no GPU although one is required)."""


class TrainingInterrupted(SystemExit):
    """SIGTERM or SIGINT stopped training; the checkpoint keeps the epochs that finished.

    A ``SystemExit``: uncaught, it ends the process without a traceback and with status
    ``128 + signum`` (143 for SIGTERM), as a shell reports a process killed by that signal,
    so Snakemake and SLURM see a failed job whose rerun resumes. Catch it to do otherwise.
    """

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


# ----------------------------------------------------------------------------- runtime


def configure_runtime(
    threads: int, require_gpu: bool = False, mixed_precision: bool = False
) -> str:
    """Fix TensorFlow's thread pools, check for a GPU, set the precision policy.

    The thread count changes floating-point reduction order and therefore the weights, so it
    is fixed explicitly. Returns a description of the device used (also logged).
    """
    for setter, getter in (
        (tf.config.threading.set_intra_op_parallelism_threads,
         tf.config.threading.get_intra_op_parallelism_threads),
        (tf.config.threading.set_inter_op_parallelism_threads,
         tf.config.threading.get_inter_op_parallelism_threads),
    ):
        try:
            setter(threads)
        except RuntimeError:
            # Already initialised in this process (a test, a notebook): keep its setting.
            if getter() != threads:
                log.warning("TensorFlow was initialised with %d threads, not %d; results "
                            "match other runs with the same count only", getter(), threads)
    gpus = tf.config.list_physical_devices("GPU")
    if require_gpu and not gpus:
        raise TrainingError(
            "config key 'training: require_gpu' is true but TensorFlow sees no GPU. Check that "
            "the job ran on a GPU node (the rule asks for gpu=1; the SLURM profile maps it to "
            "the GPU partition), that CUDA_VISIBLE_DEVICES is not empty, and that the "
            "environment has a GPU build of TensorFlow; or set require_gpu: false to train on "
            "the CPU."
        )
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in gpus]
        device = "GPU: " + ", ".join(names)
    else:
        device = f"CPU ({threads} threads)"
    if mixed_precision and gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    else:
        if mixed_precision:
            log.warning("mixed_precision is set but there is no GPU: training in float32")
        keras.mixed_precision.set_global_policy("float32")
    log.info("training device: %s; precision policy: %s", device,
             keras.mixed_precision.global_policy().name)
    return device


# ----------------------------------------------------------------------------- data


def class_of(labels: np.ndarray, task_type: str) -> np.ndarray:
    """One class per sequence for balanced sampling: argmax (multiclass), any positive (else)."""
    if task_type == "multiclass":
        return labels.argmax(1)
    return (labels > 0.5).any(1).astype(np.int64)


def class_weight_table(labels: np.ndarray, task_type: str) -> np.ndarray:
    """Per-task weights of negatives and positives, ``(T, 2)``; for multiclass, ``(T,)``.

    sklearn's 'balanced' rule: ``n / (n_classes * n_class)``, so an even split gives 1.
    """
    n = len(labels)
    if task_type == "multiclass":
        counts = np.bincount(labels.argmax(1), minlength=labels.shape[1]).astype(float)
        return np.where(counts > 0, n / (labels.shape[1] * np.maximum(counts, 1)), 0.0)
    pos = (labels > 0.5).sum(0).astype(float)
    neg = n - pos
    return np.stack([n / (2 * np.maximum(neg, 1)), n / (2 * np.maximum(pos, 1))], axis=1)


def sample_weights(labels: np.ndarray, task_type: str, table: np.ndarray) -> np.ndarray:
    """Weight of each sequence, ``(B,)`` float32: its class weight, averaged over tasks."""
    if task_type == "multiclass":
        return table[labels.argmax(1)].astype(np.float32)
    is_pos = (labels > 0.5).astype(np.int64)
    per_task = table[np.arange(labels.shape[1])[None, :], is_pos]
    return per_task.mean(1).astype(np.float32)


def _check_balance(class_balance: str, task_type: str) -> None:
    if class_balance != "none" and task_type == "regression":
        raise InputError(
            f"class_balance '{class_balance}' needs classes, but the task type is regression",
            key="training: class_balance",
            fix="set it to none for regression datasets",
        )


def _windows(n: int, chunk: int, window: int, rng: np.random.Generator) -> list[list[int]]:
    """Chunk start rows in a random order, grouped into windows of about ``window`` rows."""
    starts = rng.permutation(np.arange(0, n, chunk))
    per_window = max(1, window // chunk)
    return [list(starts[i:i + per_window]) for i in range(0, len(starts), per_window)]


def _balanced_order(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many rows as given, drawn so that every class present is equally frequent."""
    present = np.unique(classes)
    per_class = np.full(len(present), len(classes) // len(present))
    per_class[: len(classes) - per_class.sum()] += 1
    picks = [rng.choice(np.flatnonzero(classes == c), k, replace=True)
             for c, k in zip(present, per_class, strict=True)]
    return rng.permutation(np.concatenate(picks))


class SplitStream:
    """Batches of ``(codes, labels, weights, seed)`` streamed from a split file.

    Each call of the instance is one epoch; the epoch counter starts at ``first_epoch`` so a
    resumed run continues the same sequence of shuffles.
    """

    def __init__(self, path, batch_size: int, *, shuffle: bool, seed: int = 0,
                 shuffle_window: int = 32768, class_balance: str = "none",
                 first_epoch: int = 0):
        self.path = str(path)
        self.info = split_info(path)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.window = shuffle_window
        self.class_balance = class_balance if shuffle else "none"
        self.epoch = first_epoch
        _check_balance(class_balance, self.info.task_type)
        self.weight_table = None
        if class_balance == "class_weight":
            self.weight_table = class_weight_table(read_labels(path), self.info.task_type)

    @property
    def n_batches(self) -> int:
        return math.ceil(self.info.n / self.batch_size)

    def __call__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        rng = np.random.default_rng([self.seed, epoch])
        n, chunk = self.info.n, self.info.chunk_rows
        if self.shuffle:
            windows = _windows(n, chunk, self.window, rng)
        else:
            windows = [[s] for s in range(0, n, chunk)]
        pending_codes: list[np.ndarray] = []
        pending_labels: list[np.ndarray] = []
        batch = 0
        with h5py.File(self.path, "r") as h5:
            codes_ds, labels_ds = h5["codes"], h5["labels"]
            for starts in windows:
                codes = np.concatenate([codes_ds[s:s + chunk] for s in starts])
                labels = np.concatenate([labels_ds[s:s + chunk] for s in starts])
                if self.class_balance == "balanced_sampling":
                    order = _balanced_order(class_of(labels, self.info.task_type), rng)
                elif self.shuffle:
                    order = rng.permutation(len(codes))
                else:
                    order = slice(None)
                pending_codes.append(codes[order])
                pending_labels.append(labels[order])
                codes, labels = np.concatenate(pending_codes), np.concatenate(pending_labels)
                full = len(codes) // self.batch_size * self.batch_size
                for i in range(0, full, self.batch_size):
                    yield self._batch(codes[i:i + self.batch_size],
                                      labels[i:i + self.batch_size], epoch, batch)
                    batch += 1
                pending_codes, pending_labels = [codes[full:]], [labels[full:]]
        if len(pending_codes[0]):
            yield self._batch(pending_codes[0], pending_labels[0], epoch, batch)

    def _batch(self, codes, labels, epoch, batch):
        if self.weight_table is not None:
            weights = sample_weights(labels, self.info.task_type, self.weight_table)
        else:
            weights = np.ones(len(codes), np.float32)
        seed = np.array([self.seed * 1_000_003 + epoch, batch], np.int64)
        return codes, labels, weights, seed


def _to_model_input(codes, labels, weights, seed, *, augment_rc: bool, use_weights: bool):
    x = tf.one_hot(tf.cast(codes, tf.int32), 4, dtype=tf.float32)  # code 4 (N) -> zeros
    if augment_rc:
        flip = tf.random.stateless_uniform(tf.shape(codes)[:1], seed=seed) < 0.5
        x = tf.where(flip[:, None, None], x[:, ::-1, ::-1], x)
    return (x, labels, weights) if use_weights else (x, labels)


def stream_dataset(path, batch_size: int, *, shuffle: bool, seed: int = 0,
                   augment_rc: bool = False, class_balance: str = "none",
                   shuffle_window: int = 32768, first_epoch: int = 0) -> tf.data.Dataset:
    """A tf.data pipeline streaming a split file from disk.

    Yields ``(x, y)`` or, with ``class_balance='class_weight'``, ``(x, y, w)``: ``x`` one-hot
    ``(B, L, 4)`` float32, ``y`` ``(B, T)`` float32, ``w`` ``(B,)`` float32.
    """
    stream = SplitStream(path, batch_size, shuffle=shuffle, seed=seed,
                         shuffle_window=shuffle_window, class_balance=class_balance,
                         first_epoch=first_epoch)
    L, T = stream.info.sequence_length, len(stream.info.tasks)
    ds = tf.data.Dataset.from_generator(
        stream,
        output_signature=(
            tf.TensorSpec((None, L), tf.uint8), tf.TensorSpec((None, T), tf.float32),
            tf.TensorSpec((None,), tf.float32), tf.TensorSpec((2,), tf.int64),
        ),
    )
    # Without a known size, epoch 2 of a generator differs from in-memory data (FACTS.md).
    ds = ds.apply(tf.data.experimental.assert_cardinality(stream.n_batches))
    use_weights = class_balance == "class_weight" and shuffle
    ds = ds.map(lambda c, y, w, s: _to_model_input(c, y, w, s, augment_rc=augment_rc,
                                                   use_weights=use_weights),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def memory_dataset(codes: np.ndarray, labels: np.ndarray, batch_size: int, *, seed: int = 0,
                   augment_rc: bool = False) -> tf.data.Dataset:
    """The same batches from in-memory tensors (the throughput ceiling in bench/train.py)."""
    n = len(codes)
    ds = tf.data.Dataset.from_tensor_slices((codes, labels))
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    ds = ds.enumerate().map(
        lambda i, cy: _to_model_input(cy[0], cy[1], None, tf.stack([tf.constant(seed, tf.int64),
                                                                    i]),
                                      augment_rc=augment_rc, use_weights=False),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- callbacks


class _Resumable:
    """Mixin: a Keras callback whose counters survive a restart (set after on_train_begin)."""

    resume_attrs: tuple[str, ...] = ()

    def __init__(self, *args, resume: Mapping | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._resume = dict(resume or {})

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for key, value in self._resume.items():
            setattr(self, key, value)

    def state(self) -> dict:
        return {k: _plain(getattr(self, k)) for k in self.resume_attrs}


class ResumableEarlyStopping(_Resumable, keras.callbacks.EarlyStopping):
    resume_attrs = ("wait", "best", "best_epoch")


class ResumablePlateau(_Resumable, keras.callbacks.ReduceLROnPlateau):
    resume_attrs = ("wait", "best", "cooldown_counter")


class StopOnSignal(keras.callbacks.Callback):
    """Raise :class:`TrainingInterrupted` at the next batch after SIGTERM or SIGINT.

    Use as a context manager around ``fit`` (it installs the handlers) and as the last
    callback. The handler only records the signal, so a checkpoint being written is finished
    first; the check runs after every training and validation batch, which abandons the
    unfinished epoch: SLURM follows SIGTERM with SIGKILL after KillWait (30 s by default),
    too soon to finish an epoch of a large dataset. A signal that arrives while an epoch ends
    stops training after that epoch's checkpoint. A second signal acts as it would have
    without this callback (SIGTERM kills at once; the checkpoint on disk stays consistent).
    Outside the main thread Python cannot install handlers, and signals act as usual.
    """

    signals = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        super().__init__()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._record) for s in self.signals}
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _record(self, signum, frame) -> None:
        self.received = signum
        self._restore()

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    def _stop_if_signalled(self, *args, **kwargs) -> None:
        if self.received is not None:
            raise TrainingInterrupted(self.received)

    on_train_batch_end = on_test_batch_end = on_epoch_end = _stop_if_signalled


def rng_state(model: keras.Model) -> dict[str, list[int]]:
    """The state of every random number generator that training draws from.

    Keys are ``<layer name>/<i>`` for the seed generators of the model's layers (dropout,
    attention dropout, LSTM; Keras's ``save_weights`` writes none of them), and ``keras`` for
    Keras's global seed generator when it exists (``keras.random`` calls without a seed).
    Nothing else is needed: the data pipeline draws from generators seeded by
    ``(seed, epoch, batch)``, nothing in training draws from Python's, NumPy's or
    TensorFlow's global generators, and the optimizer's iteration counter is in the weights.
    """
    return {key: [int(x) for x in keras.ops.convert_to_numpy(v)]
            for key, v in _rng_variables(model).items()}


def restore_rng_state(model: keras.Model, saved: Mapping[str, Sequence[int]]) -> None:
    """Set the generators of :func:`rng_state` back to ``saved``."""
    if "keras" in saved:
        from keras.src.random.seed_generator import global_seed_generator
        global_seed_generator()  # created on first use; Keras has no public accessor
    variables = _rng_variables(model)
    if set(variables) != set(saved):
        raise TrainingError(f"the checkpoint's random generators {sorted(saved)} are not the "
                            f"model's {sorted(variables)}; delete the checkpoint folder")
    for key, v in variables.items():
        v.assign(np.asarray(saved[key], dtype=keras.backend.standardize_dtype(v.dtype)))


def _rng_variables(model: keras.Model) -> dict[str, Any]:
    # A layer's `variables` are its `weights` plus its (and its sublayers') seed states.
    weights = {id(w) for w in model.weights}
    seen: set[int] = set()
    out = {}
    for owner in [*model.layers, model]:
        extra = [v for v in owner.variables if id(v) not in weights and id(v) not in seen]
        seen.update(id(v) for v in extra)
        out.update({f"{owner.name}/{i}": v for i, v in enumerate(extra)})
    from keras.src.backend.common import global_state  # no public accessor
    gen = global_state.get_global_attribute("global_seed_generator")
    if gen is not None:
        out["keras"] = gen.state
    return out


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _lr_schedule(decay: Mapping, lr0: float):
    kind, factor, span = decay["kind"], decay["factor"], decay["decay_epochs"]
    floor = decay["min_learning_rate"]
    if kind == "linear":
        return lambda epoch: max(floor, lr0 * (1 - (1 - factor) * min(epoch / span, 1.0)))
    if kind == "exponential":
        return lambda epoch: max(floor, lr0 * factor ** (epoch / span))
    return None


class EpochCheckpoint(keras.callbacks.Callback):
    """Save weights + optimizer state, history and callback state after every epoch."""

    def __init__(self, directory: Path, fingerprint: str, history: list[dict],
                 stateful: Mapping[str, _Resumable], early_stopping=None):
        super().__init__()
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        self.history = history
        self.stateful = stateful
        self.early_stopping = early_stopping

    def on_epoch_end(self, epoch, logs=None):
        self.dir.mkdir(parents=True, exist_ok=True)
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))
        self.history.append(row)
        weights = f"epoch{epoch + 1}.weights.h5"
        self.model.save_weights(self.dir / weights)
        state = {
            "fingerprint": self.fingerprint,
            "next_epoch": epoch + 1,
            "weights": weights,
            "history": self.history,
            "callbacks": {name: cb.state() for name, cb in self.stateful.items()},
            "rng": rng_state(self.model),
            # set by early stopping, which runs before this callback
            "stopped": bool(self.model.stop_training),
            "best_weights": None,
        }
        es = self.early_stopping
        if es is not None and es.restore_best_weights and es.best_weights is not None:
            best = f"best_epoch{es.best_epoch + 1}.npz"
            if not (self.dir / best).exists():
                np.savez(self.dir / best, *es.best_weights)
            state["best_weights"] = best
        with atomic_output(self.dir / "state.json") as tmp:
            tmp.write_text(json.dumps(state, indent=1))
        # Older files go only after state.json points to the new ones: a kill at any moment
        # leaves a consistent checkpoint.
        for f in self.dir.iterdir():
            if f.name not in (weights, state["best_weights"], "state.json") and \
                    f.suffix in (".h5", ".npz"):
                f.unlink()


def fingerprint(*parts: Any, files: Sequence[str | os.PathLike] = ()) -> str:
    """Hash of settings and input files (size, mtime): a checkpoint is reused only if equal."""
    stamp = [(str(f), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    blob = json.dumps([parts, stamp], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_checkpoint(directory: Path, fp: str) -> dict | None:
    """The saved state if it matches ``fp``; a stale checkpoint is removed."""
    state_file = Path(directory) / "state.json"
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    if state.get("fingerprint") != fp:
        log.warning("checkpoint in %s was made with other settings or inputs; starting over",
                    directory)
        shutil.rmtree(directory)
        return None
    return state


# ----------------------------------------------------------------------------- training

# Keys that do not change what is learnt: a checkpoint stays valid when only these change.
_NOT_IN_FINGERPRINT = ("epochs", "mem_mb", "runtime", "require_gpu")
# Bumped when checkpoints of older code cannot resume exactly (2: RNG states added).
_CHECKPOINT_FORMAT = 2


def train_model(
    train_path: str | os.PathLike,
    valid_path: str | os.PathLike,
    model_cfg: Mapping[str, Any],
    training_cfg: Mapping[str, Any],
    *,
    threads: int = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    init_model: str | os.PathLike | None = None,
    freeze_convolutions: bool = False,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[keras.Model, pd.DataFrame]:
    """Train a model on the train split, validating on the valid split.

    Parameters
    ----------
    train_path, valid_path : split files (codes ``(N, L)``, labels ``(N, T)``).
    model_cfg, training_cfg : the ``model`` and ``training`` config sections with defaults.
    threads : TensorFlow's intra- and inter-op thread count (the rule's ``threads``).
    checkpoint_dir : where per-epoch checkpoints go; an existing matching one is resumed.
    init_model : a trained ``.keras`` model to copy matching layers from (transfer learning).
    freeze_convolutions : with ``init_model``, keep the copied conv layers frozen.
    extra_callbacks : appended to the callbacks (tests use it to interrupt or watch a run).

    Returns
    -------
    The trained float32 model, and the history ``(epochs, metrics)`` with an ``epoch`` column.

    Raises
    ------
    TrainingInterrupted : on SIGTERM or SIGINT, after logging one line on how to resume.
    """
    tc = training_cfg
    configure_runtime(threads, tc["require_gpu"], tc["mixed_precision"])
    info = _check_splits(train_path, valid_path, tc)
    seed = tc["seed"]
    keras.utils.set_random_seed(seed)  # explicit seed; layers also get their own seeds
    model = _new_model(model_cfg, tc, info, seed, init_model, freeze_convolutions)
    model.summary(print_fn=log.info)
    fp = fingerprint(dict(model_cfg), {k: v for k, v in tc.items() if k not in
                                       _NOT_IN_FINGERPRINT}, str(init_model),
                     freeze_convolutions, threads, _CHECKPOINT_FORMAT,
                     files=[train_path, valid_path])
    state = load_checkpoint(Path(checkpoint_dir), fp) if checkpoint_dir else None
    first_epoch, history, epochs = _resume(model, state, checkpoint_dir, tc["epochs"])
    callbacks, stateful = _callbacks(tc, state, info.task_type)
    es = stateful.get("early_stopping")
    if es is not None and state and state.get("best_weights"):
        with np.load(Path(checkpoint_dir) / state["best_weights"]) as npz:
            es._resume["best_weights"] = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    if checkpoint_dir:
        callbacks.append(EpochCheckpoint(Path(checkpoint_dir), fp, history, stateful, es))
    rc = tc["reverse_complement"]
    train_ds = stream_dataset(train_path, tc["batch_size"], shuffle=True, seed=seed,
                              augment_rc=rc["augment"], class_balance=tc["class_balance"],
                              shuffle_window=tc["shuffle_window"], first_epoch=first_epoch)
    valid_ds = stream_dataset(valid_path, tc["batch_size"], shuffle=False)
    with StopOnSignal() as stop:
        fit = _fit(model, train_ds, valid_ds, epochs, first_epoch,
                   [*callbacks, *extra_callbacks, stop])
    if fit is None:
        # Free the abandoned tf.data iterators (held in reference cycles) while Python runs:
        # at exit TensorFlow logs an error on finalizing them.
        gc.collect()
        log.error("training interrupted by %s; %s", signal.Signals(stop.received).name,
                  _resume_hint(checkpoint_dir, len(history)))
        raise TrainingInterrupted(stop.received)
    if not checkpoint_dir:
        for epoch, row in zip(fit.epoch, _history_rows(fit.history), strict=True):
            history.append({"epoch": epoch + 1, **row})
    if es is not None and es.restore_best_weights and es.best_epoch is not None and history:
        log.info("restored the weights of the best epoch (%d, %s)", es.best_epoch + 1,
                 es.monitor)
    return _float32_copy(model, model_cfg, info, seed), pd.DataFrame(history)


def _check_splits(train_path, valid_path, tc: Mapping) -> SplitInfo:
    info = split_info(train_path)
    valid_info = split_info(valid_path)
    if (valid_info.tasks, valid_info.task_type) != (info.tasks, info.task_type):
        raise InputError("the valid split has other tasks or another task type than the "
                         "train split", path=str(valid_path),
                         fix="rerun the data stage so both splits come from one regions.tsv")
    _check_balance(tc["class_balance"], info.task_type)
    return info


def _new_model(model_cfg, tc, info: SplitInfo, seed: int, init_model,
               freeze_convolutions: bool) -> keras.Model:
    """The compiled network, with the matching layers of ``init_model`` copied in."""
    m = build_model(model_cfg, info.sequence_length, len(info.tasks), info.task_type, seed)
    if init_model:
        copied = transfer_weights(keras.models.load_model(init_model, compile=False), m,
                                  freeze_convolutions)
        log.info("transfer learning from %s: copied %s%s", init_model, ", ".join(copied),
                 " (conv layers frozen)" if freeze_convolutions else "")
    return compile_model(m, tc, info.task_type, len(info.tasks))


def _resume(model, state, checkpoint_dir, epochs: int) -> tuple[int, list, int]:
    """Restore weights, optimizer and RNG state from a checkpoint; return the first epoch,
    the history so far and the epoch to stop at."""
    if not state:
        return 0, [], epochs
    model.optimizer.build(model.trainable_variables)
    model.load_weights(Path(checkpoint_dir) / state["weights"])
    restore_rng_state(model, state["rng"])
    first_epoch, history = state["next_epoch"], state["history"]
    log.info("resuming from the checkpoint in %s at epoch %d", checkpoint_dir, first_epoch + 1)
    if state["stopped"]:
        log.info("early stopping had ended training after epoch %d", first_epoch)
        epochs = first_epoch
    elif first_epoch >= epochs:
        log.info("checkpoint already reached %d epochs", first_epoch)
    return first_epoch, history, epochs


def _fit(model, train_ds, valid_ds, epochs: int, first_epoch: int, callbacks):
    """``model.fit``; None if a signal stopped it (see :class:`StopOnSignal`)."""
    try:
        return model.fit(train_ds, validation_data=valid_ds, epochs=epochs,
                         initial_epoch=first_epoch, callbacks=callbacks, verbose=2)
    except TrainingInterrupted:
        return None  # the caller reports it, once this traceback no longer holds fit's frames
    except RuntimeError as err:
        if "NaN" in str(err) or "Inf" in str(err):
            raise TrainingError(
                f"the training loss became NaN or infinite ({err}). Lower "
                "'training: optimizer: learning_rate', set 'training: optimizer: clipnorm' "
                "(e.g. 1.0), or check the labels (regression targets must be finite)."
            ) from None
        raise


def _resume_hint(checkpoint_dir, finished: int) -> str:
    if not checkpoint_dir:
        return "there is no checkpoint folder, so a rerun starts over"
    if not finished:
        return "no epoch had finished, so a rerun starts over"
    done = "epoch 1" if finished == 1 else f"epochs 1-{finished}"
    return (f"the checkpoint in {checkpoint_dir} holds {done}, and a rerun resumes at epoch "
            f"{finished + 1}")


def _history_rows(hist: Mapping[str, list]) -> list[dict]:
    keys = list(hist)
    return [{k: float(hist[k][i]) for k in keys} for i in range(len(hist[keys[0]]))] if keys \
        else []


def monitored(monitor: str, task_type: str) -> str:
    """The validation quantity early stopping watches; ``auto`` is val_auroc for
    classification (val_loss is lowest at epochs 1-3 on realistic data while auROC still
    climbs; BENCHMARKS.md) and val_loss for regression."""
    if monitor == "auto":
        return "val_loss" if task_type == "regression" else "val_auroc"
    if task_type == "regression" and monitor != "val_loss":
        raise InputError(f"'{monitor}' needs classes, but the task type is regression",
                         key="training: early_stopping: monitor", fix="use auto or val_loss")
    return monitor


class EpochLog(keras.callbacks.Callback):
    """One line per finished epoch in the rule's log (Keras prints its own progress to
    stdout, which reaches Snakemake's output or the SLURM job's, not the rule's log)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = ", ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items())
        log.info("epoch %d/%d (%.1f s): %s", epoch + 1, self.epochs,
                 time.perf_counter() - self.t0, metrics)


def _callbacks(tc: Mapping, state: Mapping | None, task_type: str = "binary"):
    resumed = (state or {}).get("callbacks", {})
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN(raise_error=True),
                                                 EpochLog(tc["epochs"])]
    stateful: dict[str, _Resumable] = {}
    esc = tc["early_stopping"]
    monitor = monitored(esc["monitor"], task_type)
    mode = "min" if monitor == "val_loss" else "max"
    decay = tc["learning_rate_decay"]
    schedule = _lr_schedule(decay, tc["optimizer"]["learning_rate"])
    if schedule is not None:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: schedule(epoch)))
    if decay["kind"] == "plateau":
        stateful["plateau"] = ResumablePlateau(
            monitor=monitor, mode=mode, factor=decay["factor"], patience=decay["patience"],
            min_lr=decay["min_learning_rate"], resume=_finite(resumed.get("plateau")))
    if esc["enabled"]:
        stateful["early_stopping"] = ResumableEarlyStopping(
            monitor=monitor, mode=mode, patience=esc["patience"],
            min_delta=esc["min_delta"], restore_best_weights=esc["restore_best_weights"],
            # compared with the absolute epoch, so a resumed run keeps the same warm-up
            start_from_epoch=esc["start_from_epoch"],
            verbose=1, resume=_finite(resumed.get("early_stopping")))
    callbacks += stateful.values()
    return callbacks, stateful


def _finite(saved: Mapping | None) -> dict:
    """JSON keeps no infinities: a missing 'best' means nothing was seen yet."""
    saved = dict(saved or {})
    if "best" in saved and saved["best"] is None:
        saved.pop("best")
    return saved


def _float32_copy(model: keras.Model, model_cfg, info: SplitInfo, seed: int) -> keras.Model:
    """The trained weights in a float32 model (mixed-precision models save as float32)."""
    if keras.mixed_precision.global_policy().name == "float32":
        return model
    keras.mixed_precision.set_global_policy("float32")
    clean = build_model(model_cfg, info.sequence_length, len(info.tasks), info.task_type, seed)
    clean.set_weights(model.get_weights())
    return clean


def save_model(model: keras.Model, keras_path, h5_path) -> None:
    """Write ``model.keras`` (Keras 3 format) and ``model.h5`` (legacy HDF5, for deeplift)."""
    with atomic_output(keras_path) as tmp:
        model.save(tmp.with_suffix(".keras"))
        os.replace(tmp.with_suffix(".keras"), tmp)
    with atomic_output(h5_path) as tmp:
        model.save(tmp.with_suffix(".h5"))
        os.replace(tmp.with_suffix(".h5"), tmp)


def write_history(history: pd.DataFrame, path) -> None:
    with atomic_output(path) as tmp:
        history.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def run_training(
    train_path, valid_path, model_path, h5_path, history_path, model_cfg, training_cfg, *,
    threads: int = 1, init_model=None, freeze_convolutions: bool = False,
) -> keras.Model:
    """Train and write ``model.keras``, ``model.h5`` and ``history.tsv``.

    Checkpoints go to ``checkpoint/`` beside ``model_path`` (not a Snakemake output, so a
    killed job's rerun finds them) and are removed once the outputs are written.
    """
    ckpt = Path(model_path).parent / "checkpoint"
    model, history = train_model(train_path, valid_path, model_cfg, training_cfg,
                                 threads=threads, checkpoint_dir=ckpt, init_model=init_model,
                                 freeze_convolutions=freeze_convolutions)
    save_model(model, model_path, h5_path)
    write_history(history, history_path)
    shutil.rmtree(ckpt, ignore_errors=True)
    return model
