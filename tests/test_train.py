"""Tests of peak2motif.train: streaming, learning, early stopping, resume, NaN, determinism."""

from __future__ import annotations

import json
import signal
import time

import jsonschema
import keras
import numpy as np
import pytest
from peak2motif.config import with_defaults
from peak2motif.errors import InputError
from peak2motif.evaluate import predict_split
from peak2motif.model import build_model
from peak2motif.splitfiles import read_split
from peak2motif.train import (
    SplitStream,
    TrainingError,
    configure_runtime,
    restore_rng_state,
    rng_state,
    stream_dataset,
    train_model,
)
from training_fixtures import RaiseAfterEpoch, make_splits, read_run, run_in_subprocess

SMALL_MODEL = {"conv_blocks": [{"filters": 8, "kernel_size": 9, "pool_size": 4, "dropout": 0.1}],
               "dense_blocks": [{"units": 8, "dropout": 0.1}]}


def training(**over) -> dict:
    cfg = {"epochs": 2, "batch_size": 32, "early_stopping": {"enabled": False}}
    cfg.update(over)
    return with_defaults("training", cfg)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return make_splits(tmp_path_factory.mktemp("splits"), n=(300, 100, 100), length=60)


@pytest.fixture(scope="module")
def motif_splits(tmp_path_factory):
    return make_splits(tmp_path_factory.mktemp("motif"), n=(1600, 300, 300), length=60, seed=1)


def test_stream_yields_every_row_once_per_epoch_in_a_new_order(splits):
    stream = SplitStream(splits["train"], 32, shuffle=True, seed=0, shuffle_window=128)
    data = read_split(splits["train"])
    orders = []
    for _ in range(2):
        codes = np.concatenate([c for c, *_ in stream()])
        # rows are identified by their codes (random sequences are unique)
        keys = {c.tobytes(): i for i, c in enumerate(data.codes)}
        order = [keys[c.tobytes()] for c in codes]
        assert sorted(order) == list(range(len(data.codes)))
        orders.append(order)
    assert orders[0] != orders[1]
    again = SplitStream(splits["train"], 32, shuffle=True, seed=0, shuffle_window=128)
    first = np.concatenate([c for c, *_ in again()])
    np.testing.assert_array_equal(first, data.codes[orders[0]])


def test_dataset_is_one_hot_and_reverse_complements_about_half(splits):
    data = read_split(splits["valid"])
    plain = np.concatenate([x for x, _ in stream_dataset(splits["valid"], 50, shuffle=False)])
    np.testing.assert_array_equal(plain.argmax(-1), data.codes)
    assert plain.shape == (100, 60, 4) and plain.dtype == np.float32
    aug = np.concatenate([x for x, _ in stream_dataset(splits["valid"], 50, shuffle=False,
                                                       augment_rc=True)])
    flipped = [not np.array_equal(a, p) for a, p in zip(aug, plain, strict=True)]
    np.testing.assert_array_equal(aug[flipped], plain[flipped][:, ::-1, ::-1])
    assert 30 < sum(flipped) < 70


def test_balanced_sampling_and_class_weights(tmp_path):
    paths = make_splits(tmp_path, n=(400, 40, 40), length=30)
    data = read_split(paths["train"])
    keep = np.flatnonzero(data.labels[:, 0] == 0).tolist() + \
        np.flatnonzero(data.labels[:, 0] == 1)[:40].tolist()  # about 1:5 imbalance
    from peak2motif.splitfiles import write_split
    write_split(tmp_path / "imb.h5", data.codes[keep], data.labels[keep],
                data.region_index[keep], data.tasks, data.task_type)
    bal = SplitStream(tmp_path / "imb.h5", 32, shuffle=True, class_balance="balanced_sampling")
    labels = np.concatenate([y for _, y, *_ in bal()])
    assert len(labels) == len(keep) and 0.4 < labels.mean() < 0.6
    cw = SplitStream(tmp_path / "imb.h5", 32, shuffle=True, class_balance="class_weight")
    batches = list(cw())
    y = np.concatenate([b[1] for b in batches])[:, 0]
    w = np.concatenate([b[2] for b in batches])
    # 'balanced' weights: both classes carry the same total weight
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    with pytest.raises(InputError, match="class_balance"):
        SplitStream(make_splits(tmp_path / "r", "regression", n=(20, 10, 10))["train"], 8,
                    shuffle=True, class_balance="class_weight")


def test_small_model_learns_the_planted_motif(motif_splits):
    model_cfg = with_defaults("model", {
        "conv_blocks": [{"filters": 16, "kernel_size": 9, "pool_size": 4, "dropout": 0.1}],
        "dense_blocks": [{"units": 16, "dropout": 0.2}]})
    model, history = train_model(motif_splits["train"], motif_splits["valid"], model_cfg,
                                 training(epochs=12, early_stopping={"patience": 3}), threads=2)
    from sklearn.metrics import roc_auc_score
    preds = predict_split(model, motif_splits["test"])
    labels = read_split(motif_splits["test"]).labels
    assert roc_auc_score(labels[:, 0], preds[:, 0]) > 0.9
    assert list(history.epoch) == list(range(1, len(history) + 1))


class RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights, self.epochs = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


class BlowUpAfter(keras.callbacks.Callback):
    """A huge learning rate from epoch ``k``: later epochs are worse, so the best is early."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.k:
            self.model.optimizer.learning_rate.assign(50.0)


def test_early_stopping_restores_the_best_epoch(splits):
    record = RecordWeights()
    cfg = training(epochs=8, learning_rate_decay={"kind": "none"},
                   early_stopping={"enabled": True, "patience": 2, "monitor": "val_loss"})
    # relu: a learning rate of 50 makes later epochs worse; with the exponential first
    # layer it overflows to NaN, which TerminateOnNaN stops (tested elsewhere)
    model, history = train_model(splits["train"], splits["valid"], with_defaults("model", {
        **SMALL_MODEL, "first_activation": "relu"}), cfg, extra_callbacks=[BlowUpAfter(2),
                                                                            record])
    best = int(history.val_loss.idxmin())
    assert best < len(history) - 1, "the test needs a best epoch before the last"
    assert len(history) < 8  # stopped early
    for got, want in zip(model.get_weights(), record.weights[best], strict=True):
        np.testing.assert_array_equal(got, want)


def test_every_epoch_is_logged_to_the_rule_log(splits, caplog):
    """Keras's own progress goes to stdout (Snakemake's output), so the rule's log gets one
    line per epoch from the logger, with the monitored metric."""
    import logging

    with caplog.at_level(logging.INFO, logger="peak2motif.train"):
        _, history = train_model(splits["train"], splits["valid"],
                                 with_defaults("model", SMALL_MODEL), training(epochs=3))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("val_auroc" in line for line in lines)
    assert len(history) == 3


def test_interrupted_run_resumes_from_its_checkpoint(splits, tmp_path):
    model_cfg = with_defaults("model", SMALL_MODEL)
    cfg = training(epochs=4, early_stopping={"enabled": True, "patience": 10})
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(KeyboardInterrupt):
        train_model(splits["train"], splits["valid"], model_cfg, cfg, checkpoint_dir=ckpt,
                    extra_callbacks=[RaiseAfterEpoch(1)])
    state = json.loads((ckpt / "state.json").read_text())
    assert state["next_epoch"] == 2 and len(state["history"]) == 2
    record = RecordWeights()
    resumed, history = train_model(splits["train"], splits["valid"], model_cfg, cfg,
                                   checkpoint_dir=ckpt, extra_callbacks=[record])
    assert record.epochs == [2, 3]  # 0-based: epochs 3 and 4 only
    assert list(history.epoch) == [1, 2, 3, 4]
    # and it ends where an uninterrupted run ends
    straight, _ = train_model(splits["train"], splits["valid"], model_cfg, cfg)
    for a, b in zip(resumed.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("architecture, owners", [
    ("cnn", {"conv1_dropout", "dense1_dropout"}),
    ("cnn_lstm", {"conv1_dropout", "bilstm", "dense1_dropout"}),
    ("cnn_attention", {"conv1_dropout", "attention", "dense1_dropout"}),
])
def test_rng_state_covers_every_seed_generator_and_restores_it(architecture, owners):
    keras.utils.set_random_seed(0)  # drops a global generator that an earlier test made
    model = build_model(with_defaults("model", {**SMALL_MODEL, "architecture": architecture}),
                        60, 1, "binary", seed=0)
    saved = rng_state(model)
    assert {key.split("/")[0] for key in saved} == owners
    model(np.zeros((2, 60, 4), np.float32), training=True)  # the dropout layers draw
    assert rng_state(model) != saved
    restore_rng_state(model, saved)
    assert rng_state(model) == saved
    with pytest.raises(TrainingError, match="delete the checkpoint"):
        restore_rng_state(model, {"conv1_dropout/0": [0, 0]})
    keras.random.uniform(())  # no seed: draws from, and creates, Keras's global generator
    with_global = rng_state(model)
    assert "keras" in with_global
    keras.utils.set_random_seed(0)  # as a new run does: the global generator is gone
    restore_rng_state(model, with_global)
    assert rng_state(model) == with_global


def resume_spec(splits, tmp_path, name: str) -> dict:
    """A run whose every epoch draws dropout masks, so resuming must restore their RNG."""
    cfg = training(epochs=6, learning_rate_decay={"kind": "plateau", "patience": 1},
                   early_stopping={"enabled": True, "patience": 3, "start_from_epoch": 1})
    return {"train": splits["train"], "valid": splits["valid"],
            "model": with_defaults("model", SMALL_MODEL), "training": cfg, "threads": 1,
            "checkpoint_dir": tmp_path / f"{name}_checkpoint", "out": tmp_path / name}


@pytest.fixture(scope="module")
def straight_run(splits, tmp_path_factory):
    """The uninterrupted run of :func:`resume_spec`, in a fresh process."""
    folder = tmp_path_factory.mktemp("straight")
    proc = run_in_subprocess(resume_spec(splits, folder, "straight"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    variables, history = read_run(folder / "straight")
    assert len(history) > 3, "the comparison needs epochs after the interruption"
    return variables, history


def assert_same_run(got, want):
    (got_vars, got_history), (want_vars, want_history) = got, want
    assert got_history == want_history  # exact floats
    assert len(got_vars) == len(want_vars)
    for a, b in zip(got_vars, want_vars, strict=True):
        np.testing.assert_array_equal(a, b)


def test_run_resumed_in_a_fresh_process_equals_an_uninterrupted_one(splits, straight_run,
                                                                    tmp_path):
    spec = resume_spec(splits, tmp_path, "resumed")
    killed = run_in_subprocess({**spec, "raise_after": 2})
    assert killed.returncode != 0 and "simulated kill after epoch 2" in killed.stderr
    assert json.loads((spec["checkpoint_dir"] / "state.json").read_text())["next_epoch"] == 3
    resumed = run_in_subprocess(spec)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from the checkpoint" in resumed.stderr
    assert_same_run(read_run(spec["out"]), straight_run)


def test_sigterm_stops_training_and_the_rerun_resumes_to_the_same_end(splits, straight_run,
                                                                      tmp_path):
    spec = resume_spec(splits, tmp_path, "signalled")
    state_file = spec["checkpoint_dir"] / "state.json"
    # Slow batches make the signal arrive in the middle of an epoch.
    proc = run_in_subprocess({**spec, "sleep_each_batch": 0.1}, wait=False)
    deadline = time.monotonic() + 300
    while not state_file.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr
    said = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(said) == 1 and "SIGTERM" in said[0] and "rerun" in said[0], said
    assert json.loads(state_file.read_text())["next_epoch"] < spec["training"]["epochs"]
    rerun = run_in_subprocess(spec)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_same_run(read_run(spec["out"]), straight_run)


def never_improving(start_from_epoch: int) -> dict:
    """Early stopping for which no epoch after the first one it watches is an improvement."""
    return training(epochs=8, early_stopping={"enabled": True, "patience": 1, "min_delta": 10.0,
                                              "start_from_epoch": start_from_epoch})


def test_early_stopping_waits_for_start_from_epoch_also_across_a_resume(splits, tmp_path):
    model_cfg = with_defaults("model", SMALL_MODEL)
    _, at_once = train_model(splits["train"], splits["valid"], model_cfg, never_improving(0))
    assert list(at_once.epoch) == [1, 2]
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(KeyboardInterrupt):  # after epoch 4, the first one it watches
        train_model(splits["train"], splits["valid"], model_cfg, never_improving(3),
                    checkpoint_dir=ckpt, extra_callbacks=[RaiseAfterEpoch(3)])
    _, later = train_model(splits["train"], splits["valid"], model_cfg, never_improving(3),
                           checkpoint_dir=ckpt)
    # epoch 4 is the best, epoch 5 uses up the patience; a resume that forgot epoch 4 would
    # make epoch 5 the best and stop after epoch 6
    assert list(later.epoch) == [1, 2, 3, 4, 5]
    with pytest.raises(jsonschema.ValidationError, match="start_from_epoch"):
        never_improving(-1)


def test_rerun_after_early_stopping_does_not_train_on(splits, tmp_path):
    model_cfg = with_defaults("model", SMALL_MODEL)
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(KeyboardInterrupt):  # killed after the epoch that stopped training
        train_model(splits["train"], splits["valid"], model_cfg, never_improving(0),
                    checkpoint_dir=ckpt, extra_callbacks=[RaiseAfterEpoch(1)])
    record = RecordWeights()
    _, history = train_model(splits["train"], splits["valid"], model_cfg, never_improving(0),
                             checkpoint_dir=ckpt, extra_callbacks=[record])
    assert record.epochs == [] and list(history.epoch) == [1, 2]


def test_checkpoint_of_other_settings_is_not_resumed(splits, tmp_path):
    model_cfg = with_defaults("model", SMALL_MODEL)
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(KeyboardInterrupt):
        train_model(splits["train"], splits["valid"], model_cfg, training(epochs=3),
                    checkpoint_dir=ckpt, extra_callbacks=[RaiseAfterEpoch(0)])
    record = RecordWeights()
    train_model(splits["train"], splits["valid"], model_cfg, training(epochs=2, seed=5),
                checkpoint_dir=ckpt, extra_callbacks=[record])
    assert record.epochs == [0, 1]


def test_same_seed_gives_identical_weights(splits):
    model_cfg = with_defaults("model", SMALL_MODEL)
    a, _ = train_model(splits["train"], splits["valid"], model_cfg, training(seed=7))
    b, _ = train_model(splits["train"], splits["valid"], model_cfg, training(seed=7))
    c, _ = train_model(splits["train"], splits["valid"], model_cfg, training(seed=8))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not all(np.array_equal(wa, wc) for wa, wc in
                   zip(a.get_weights(), c.get_weights(), strict=True))


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    paths = make_splits(tmp_path, "regression", n=(64, 32, 32), length=30)
    import h5py
    with h5py.File(paths["train"], "r+") as h5:
        h5["labels"][3, 0] = np.nan
    with pytest.raises(TrainingError, match="NaN or infinite.*learning_rate"):
        train_model(paths["train"], paths["valid"], with_defaults("model", SMALL_MODEL),
                    training(epochs=1))


@pytest.mark.parametrize("task_type", ["binary", "multitask", "multiclass", "regression"])
def test_every_task_type_trains(task_type, tmp_path):
    paths = make_splits(tmp_path, task_type, n=(64, 32, 32), length=40)
    model, history = train_model(paths["train"], paths["valid"],
                                 with_defaults("model", SMALL_MODEL),
                                 training(epochs=1, batch_size=16))
    assert len(history) == 1 and np.isfinite(history.loss[0])
    n_out = {"binary": 1, "multitask": 2, "multiclass": 3, "regression": 1}[task_type]
    assert model.output_shape == (None, n_out)
    preds = predict_split(model, paths["test"])
    if task_type == "multiclass":
        np.testing.assert_allclose(preds.sum(1), 1, rtol=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam"])
def test_every_optimizer_trains_one_step(name, splits):
    model_cfg = with_defaults("model", SMALL_MODEL)
    cfg = training(epochs=1, optimizer={"name": name})
    model, history = train_model(splits["train"], splits["valid"], model_cfg, cfg)
    assert model.optimizer.__class__.__name__.lower() == name
    assert int(model.optimizer.iterations) == 10  # 300 sequences / 32 per batch
    assert np.isfinite(history.loss[0])


@pytest.mark.parametrize("kind", ["linear", "exponential", "plateau"])
def test_learning_rate_decay(kind, splits):
    cfg = training(epochs=3, learning_rate_decay={"kind": kind, "factor": 0.5,
                                                  "decay_epochs": 2, "patience": 1},
                   optimizer={"learning_rate": 0.01})
    _, history = train_model(splits["train"], splits["valid"], with_defaults("model",
                             SMALL_MODEL), cfg)
    lr = list(history.learning_rate)
    if kind == "linear":
        np.testing.assert_allclose(lr, [0.01, 0.0075, 0.005], rtol=1e-5)
    elif kind == "exponential":
        np.testing.assert_allclose(lr, [0.01, 0.01 * 0.5 ** 0.5, 0.005], rtol=1e-5)
    else:
        assert lr[0] == pytest.approx(0.01) and min(lr) >= 0.0025


def test_require_gpu_fails_at_once_without_a_gpu():
    import tensorflow as tf
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainingError, match="require_gpu.*no GPU"):
        configure_runtime(1, require_gpu=True)
    assert configure_runtime(1, mixed_precision=True).startswith("CPU")
    assert keras.mixed_precision.global_policy().name == "float32"
