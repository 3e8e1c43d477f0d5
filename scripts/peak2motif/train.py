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
After every epoch, ``checkpoint_dir`` gets the weights with the optimizer state, and
``state.json``: the next epoch, the history so far, the state of early stopping and of
plateau decay, and a fingerprint of the settings and input files. A rerun with the same
fingerprint continues from there. The folder is not a Snakemake output, so Snakemake does
not delete it when a killed job's outputs are cleaned up; it is removed after a successful
run. Keras's BackupAndRestore saves only weights and the epoch number (early stopping would
restart its patience and lose its best weights), so this part is written by hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from peak2motif.errors import InputError
from peak2motif.model import build_model, compile_model, transfer_weights
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, no GPU although one is required)."""


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


@dataclass
class SplitInfo:
    n: int
    sequence_length: int
    tasks: list[str]
    task_type: str
    chunk_rows: int


def split_info(path: str | os.PathLike) -> SplitInfo:
    """Shape and attributes of a split file, without reading its arrays."""
    with h5py.File(path, "r") as h5:
        codes = h5["codes"]
        return SplitInfo(
            n=int(codes.shape[0]),
            sequence_length=int(codes.shape[1]),
            tasks=[str(t) for t in h5.attrs["tasks"]],
            task_type=str(h5.attrs["task_type"]),
            chunk_rows=int(codes.chunks[0]) if codes.chunks else 1024,
        )


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """All labels of a split, ``(N, T)`` float32 (small: codes are what is streamed)."""
    with h5py.File(path, "r") as h5:
        return h5["labels"][:]


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


class RaiseAfterEpoch(keras.callbacks.Callback):
    """Raise after epoch ``k`` (0-based) ends: simulates a killed job in tests."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.k:
            raise KeyboardInterrupt(f"simulated kill after epoch {epoch}")


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
    extra_callbacks : appended to the callbacks (tests use :class:`RaiseAfterEpoch`).

    Returns
    -------
    The trained float32 model, and the history ``(epochs, metrics)`` with an ``epoch`` column.
    """
    tc = training_cfg
    configure_runtime(threads, tc["require_gpu"], tc["mixed_precision"])
    info = split_info(train_path)
    valid_info = split_info(valid_path)
    if (valid_info.tasks, valid_info.task_type) != (info.tasks, info.task_type):
        raise InputError("the valid split has other tasks or another task type than the "
                         "train split", path=str(valid_path),
                         fix="rerun the data stage so both splits come from one regions.tsv")
    _check_balance(tc["class_balance"], info.task_type)
    seed = tc["seed"]
    keras.utils.set_random_seed(seed)  # explicit seed; layers also get their own seeds

    def new_model() -> keras.Model:
        m = build_model(model_cfg, info.sequence_length, len(info.tasks), info.task_type, seed)
        if init_model:
            copied = transfer_weights(keras.models.load_model(init_model, compile=False), m,
                                      freeze_convolutions)
            log.info("transfer learning from %s: copied %s%s", init_model, ", ".join(copied),
                     " (conv layers frozen)" if freeze_convolutions else "")
        return compile_model(m, tc, info.task_type, len(info.tasks))

    model = new_model()
    model.summary(print_fn=log.info)

    fp = fingerprint(dict(model_cfg), {k: v for k, v in tc.items() if k not in
                                       _NOT_IN_FINGERPRINT}, str(init_model),
                     freeze_convolutions, threads, files=[train_path, valid_path])
    state = load_checkpoint(Path(checkpoint_dir), fp) if checkpoint_dir else None
    first_epoch, history = 0, []
    if state:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(Path(checkpoint_dir) / state["weights"])
        first_epoch, history = state["next_epoch"], state["history"]
        log.info("resuming from the checkpoint in %s at epoch %d", checkpoint_dir,
                 first_epoch + 1)
    if first_epoch >= tc["epochs"]:
        log.info("checkpoint already reached %d epochs", first_epoch)

    callbacks, stateful = _callbacks(tc, state)
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
    try:
        fit = model.fit(train_ds, validation_data=valid_ds, epochs=tc["epochs"],
                        initial_epoch=first_epoch, callbacks=[*callbacks, *extra_callbacks],
                        verbose=2)
    except RuntimeError as err:
        if "NaN" in str(err) or "Inf" in str(err):
            raise TrainingError(
                f"the training loss became NaN or infinite ({err}). Lower "
                "'training: optimizer: learning_rate', set 'training: optimizer: clipnorm' "
                "(e.g. 1.0), or check the labels (regression targets must be finite)."
            ) from None
        raise
    if not checkpoint_dir:
        for epoch, row in zip(fit.epoch, _rows(fit.history), strict=True):
            history.append({"epoch": epoch + 1, **row})
    if es is not None and es.restore_best_weights and es.best_epoch is not None and history:
        log.info("restored the weights of the best epoch (%d, %s)", es.best_epoch + 1,
                 es.monitor)
    return _float32_copy(model, model_cfg, info, seed), pd.DataFrame(history)


def _rows(hist: Mapping[str, list]) -> list[dict]:
    keys = list(hist)
    return [{k: float(hist[k][i]) for k in keys} for i in range(len(hist[keys[0]]))] if keys \
        else []


def _callbacks(tc: Mapping, state: Mapping | None):
    resumed = (state or {}).get("callbacks", {})
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN(raise_error=True)]
    stateful: dict[str, _Resumable] = {}
    esc = tc["early_stopping"]
    mode = "min" if esc["monitor"] == "val_loss" else "max"
    decay = tc["learning_rate_decay"]
    schedule = _lr_schedule(decay, tc["optimizer"]["learning_rate"])
    if schedule is not None:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: schedule(epoch)))
    if decay["kind"] == "plateau":
        stateful["plateau"] = ResumablePlateau(
            monitor=esc["monitor"], mode=mode, factor=decay["factor"], patience=decay["patience"],
            min_lr=decay["min_learning_rate"], resume=_finite(resumed.get("plateau"), mode))
    if esc["enabled"]:
        stateful["early_stopping"] = ResumableEarlyStopping(
            monitor=esc["monitor"], mode=mode, patience=esc["patience"],
            min_delta=esc["min_delta"], restore_best_weights=esc["restore_best_weights"],
            verbose=1, resume=_finite(resumed.get("early_stopping"), mode))
    callbacks += stateful.values()
    return callbacks, stateful


def _finite(saved: Mapping | None, mode: str) -> dict:
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
