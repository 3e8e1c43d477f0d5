"""Tests of peak2motif.model: the network built from the config, and config errors."""

from __future__ import annotations

import copy

import keras
import numpy as np
import pytest
from peak2motif.config import SCHEMA_PATH, check_config, with_defaults
from peak2motif.errors import InputError
from peak2motif.model import (
    build_model,
    compile_model,
    make_optimizer,
    transfer_weights,
)

L, T = 60, 2


def small(**over) -> dict:
    cfg = {"conv_blocks": [{"filters": 4, "kernel_size": 5, "pool_size": 2},
                           {"filters": 4, "kernel_size": 3, "pool_size": 2}],
           "dense_blocks": [{"units": 8}]}
    cfg.update(over)
    return with_defaults("model", cfg)


def test_default_is_a_sequential_model_deeplift_can_read():
    model = build_model(with_defaults("model"), 200, 1, "binary")
    assert isinstance(model, keras.Sequential)
    assert isinstance(model.layers[-1], keras.layers.Activation)
    assert model.layers[-1].get_config()["activation"] == "sigmoid"
    assert isinstance(model.layers[-2], keras.layers.Dense) and model.layers[-2].units == 1
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv1D)]
    assert convs and all(c.padding == "valid" and c.dilation_rate == (1,) for c in convs)
    # average pooling keeps DeepLIFT's summation-to-delta exact (FACTS.md)
    assert not any(isinstance(la, keras.layers.MaxPooling1D) for la in model.layers)
    assert any(isinstance(la, keras.layers.AveragePooling1D) for la in model.layers)
    # conv -> BN -> activation order
    names = [la.name for la in model.layers]
    assert names.index("conv1") < names.index("conv1_bn") < names.index("conv1_act")


@pytest.mark.parametrize("task_type,act", [("binary", "sigmoid"), ("multitask", "sigmoid"),
                                           ("multiclass", "softmax"), ("regression", "linear")])
def test_output_activation_follows_task_type(task_type, act):
    model = build_model(small(), L, T, task_type)
    assert model.layers[-1].get_config()["activation"] == act
    assert model.output_shape == (None, T)


def test_output_activation_override():
    model = build_model(small(output_activation="softplus"), L, 1, "regression")
    assert model.layers[-1].get_config()["activation"] == "softplus"


@pytest.mark.parametrize("kind,n_losses", [("none", 0), ("l1", 4), ("l2", 4), ("l1_l2", 4)])
def test_regularizers_appear_in_model_losses(kind, n_losses):
    cfg = small(regularizer={"kind": kind, "l1": 0.01, "l2": 0.02})
    model = build_model(cfg, L, T, "multitask")
    model(np.ones((2, L, 4), np.float32))
    assert len(model.losses) == n_losses  # 2 conv + 1 dense + logits kernels
    if kind != "none":
        reg = model.get_layer("conv1").kernel_regularizer
        expected = {"l1": keras.regularizers.L1, "l2": keras.regularizers.L2,
                    "l1_l2": keras.regularizers.L1L2}[kind]
        assert type(reg) is expected
        assert all(float(loss) > 0 for loss in model.losses)


def test_first_activation_and_no_batch_norm():
    model = build_model(small(first_activation="exponential", batch_norm=False), L, T, "binary")
    assert model.get_layer("conv1_act").get_config()["activation"] == "exponential"
    assert model.get_layer("conv2_act").get_config()["activation"] == "relu"
    assert not any(isinstance(la, keras.layers.BatchNormalization) for la in model.layers)


def test_max_pooling_and_global_pooling_are_options():
    blocks = [{"filters": 4, "kernel_size": 5, "pool_size": 2, "pool_type": "max"}]
    model = build_model(small(conv_blocks=blocks, global_pooling="average"), L, T, "binary")
    assert isinstance(model.get_layer("conv1_pool"), keras.layers.MaxPooling1D)
    assert isinstance(model.get_layer("global_pool"), keras.layers.GlobalAveragePooling1D)


@pytest.mark.parametrize("init", ["glorot_uniform", "he_normal", "random_normal",
                                  "random_uniform", "orthogonal", "lecun_normal"])
def test_initializers_are_seeded(init):
    a = build_model(small(kernel_initializer=init), L, T, "binary", seed=3)
    b = build_model(small(kernel_initializer=init), L, T, "binary", seed=3)
    c = build_model(small(kernel_initializer=init), L, T, "binary", seed=4)
    wa, wb, wc = (m.get_layer("conv1").get_weights()[0] for m in (a, b, c))
    np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


@pytest.mark.parametrize("arch", ["cnn_lstm", "cnn_attention"])
def test_other_architectures_end_in_logits_then_activation(arch):
    model = build_model(small(architecture=arch), L, T, "multitask")
    assert model.layers[-2].name == "logits" and model.layers[-1].name == "output"
    out = model(np.random.default_rng(0).random((3, L, 4)).astype(np.float32))
    assert out.shape == (3, T)
    assert (arch == "cnn_lstm") == isinstance(model, keras.Sequential)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam"])
def test_every_optimizer_gets_its_own_parameters(name):
    cfg = with_defaults("training", {"optimizer": {"name": name, "momentum": 0.5,
                                                   "learning_rate": 0.02}})
    opt = make_optimizer(cfg["optimizer"])
    assert opt.__class__.__name__.lower() == name
    assert float(opt.learning_rate) == pytest.approx(0.02)
    if name == "sgd":
        assert opt.nesterov is True and opt.momentum == 0.5


def test_transfer_copies_matching_layers_and_freezes_convolutions():
    src = build_model(small(), L, T, "multitask", seed=1)
    dst = build_model(small(), L, 3, "multiclass", seed=2)
    copied = transfer_weights(src, dst, freeze_convolutions=True)
    assert "conv1" in copied and "logits" not in copied  # 2 tasks vs 3 classes
    np.testing.assert_array_equal(dst.get_layer("conv1").get_weights()[0],
                                  src.get_layer("conv1").get_weights()[0])
    assert not dst.get_layer("conv1").trainable and dst.get_layer("dense1").trainable
    compile_model(dst, with_defaults("training"), "multiclass", 3)
    before = dst.get_layer("conv1").get_weights()[0].copy()
    dst.train_on_batch(np.ones((4, L, 4), np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])
    np.testing.assert_array_equal(dst.get_layer("conv1").get_weights()[0], before)


def _config(**sections) -> dict:
    cfg = {"datasets": {"d": {"genome": "g.fa", "peaks": "p.bed"}}}
    cfg.update(copy.deepcopy(sections))
    return cfg


@pytest.mark.parametrize("sections,key", [
    ({"model": {"conv_blocks": [{"filters": 8, "kernel_size": 5, "pool_type": "median"}]}},
     "model: conv_blocks: 0: pool_type"),
    ({"training": {"optimizer": {"name": "adamw"}}}, "training: optimizer: name"),
    ({"training": {"optimizer": {"learning_rate": -1}}}, "training: optimizer: learning_rate"),
    ({"training": {"batch_size": 0}}, "training: batch_size"),
    ({"model": {"regularizer": {"kind": "l3"}}}, "model: regularizer: kind"),
    ({"training": {"early_stoping": {}}}, "training: early_stoping"),
    ({"model": {"first_activation": "swishy"}}, "model: first_activation"),
    ({"sweep": {"grid": {"training.batch_size": 64}}}, "sweep: grid: training.batch_size"),
    ({"sweep": {"grid": {"data.seed": [1, 2]}}}, "sweep: grid"),
])
def test_bad_knob_values_get_a_schema_error_naming_the_key(sections, key):
    with pytest.raises(InputError, match=f"config key '{key}"):
        check_config(_config(**sections), SCHEMA_PATH)


def test_defaults_pass_the_schema():
    # (that every key has a description and a default is test_config's schema walk)
    check_config(_config(model=with_defaults("model"), training=with_defaults("training"),
                         sweep=with_defaults("sweep")), SCHEMA_PATH)


def test_residual_trunk_is_functional_with_dilated_adds():
    model = build_model(small(architecture="cnn_residual", residual={"layers": 3}), L, T,
                        "multitask")
    assert not isinstance(model, keras.Sequential)
    rates = [layer.dilation_rate[0] for layer in model.layers if layer.name.startswith("res")
             and isinstance(layer, keras.layers.Conv1D)]
    assert rates == [2, 4, 8]
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 3
    assert model.layers[-2].name == "logits" and model.output_shape == (None, T)
