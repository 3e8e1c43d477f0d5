"""deeplift on TF 2.21 through peak2motif.deeplift_compat.

deeplift disables TF2 behaviour process-wide, so every deeplift run here goes through
``run_deeplift`` (a child process); this pytest process stays eager.
"""

from __future__ import annotations

import json

import h5py
import keras
import numpy as np
import pytest
from attribution_toys import toy_data, toy_model
from peak2motif.deeplift_compat import deeplift_model_config, run_deeplift
from peak2motif.errors import InputError
from peak2motif.sequences import one_hot


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("compat") / "model.h5"
    model = toy_model(length=60, n=300)
    model.save(path)
    return model, path


def _save(model, tmp_path, name="m.h5"):
    path = tmp_path / name
    model.save(path)
    return path


def test_config_rewrite_moves_input_shape_and_converts_relu_layer(tmp_path):
    model = toy_model(length=50, train=False, layers=[
        keras.layers.Conv1D(4, 5), keras.layers.ReLU(), keras.layers.Flatten(),
        keras.layers.Dense(1)])
    cfg = deeplift_model_config(_save(model, tmp_path))
    classes = [layer["class_name"] for layer in cfg["config"]]
    assert classes == ["Conv1D", "Activation", "Flatten", "Dense", "Activation"]
    assert cfg["config"][0]["config"]["batch_input_shape"] == [None, 50, 4]
    assert cfg["config"][1]["config"]["activation"] == "relu"
    # the stored Keras 3 config itself still has the InputLayer deeplift chokes on
    with h5py.File(tmp_path / "m.h5") as h5:
        stored = json.loads(h5.attrs["model_config"])
    assert stored["config"]["layers"][0]["class_name"] == "InputLayer"


@pytest.mark.parametrize(
    "layers, message",
    [
        (lambda: [keras.layers.LSTM(4), keras.layers.Dense(1)], "LSTM"),
        (lambda: [keras.layers.Conv1D(4, 5, dilation_rate=2, padding="same"),
                  keras.layers.Flatten(), keras.layers.Dense(1)], "dilation"),
        (lambda: [keras.layers.Conv1D(4, 5, activation="gelu"), keras.layers.Flatten(),
                  keras.layers.Dense(1)], "gelu"),
    ],
)
def test_unsupported_models_get_a_clear_error(tmp_path, layers, message):
    model = toy_model(length=40, train=False, layers=layers())
    with pytest.raises(InputError, match=message) as err:
        deeplift_model_config(_save(model, tmp_path))
    assert "Fix:" in str(err.value)


def test_functional_model_is_refused(tmp_path):
    inp = keras.Input((30, 4))
    out = keras.layers.Dense(1)(keras.layers.Flatten()(inp))
    with pytest.raises(InputError, match="only Sequential"):
        deeplift_model_config(_save(keras.Model(inp, out), tmp_path))


@pytest.mark.parametrize("mode", ["GenomicsDefault", "Rescale", "RevealCancel"])
def test_contributions_sum_to_logit_difference_and_logits_match_keras(trained, mode):
    model, path = trained
    codes = toy_data(12, 60, seed=5)[0]
    rng = np.random.default_rng(0)
    ref_codes = rng.integers(0, 4, (12, 3, 60)).astype(np.uint8)
    out = run_deeplift(path, codes, ref_codes=ref_codes, mode=mode, batch_size=8)
    delta = out["logit"][:, None] - out["logit_ref"]
    assert np.abs(out["contrib_sum"] - delta).max() < 1e-4
    assert out["batch_max_error"].shape == (6,)  # 12 sequences, 2 per batch of 8 pairs
    keras_logit = keras.Model(model.inputs, model.layers[-2].output).predict(
        one_hot(codes), verbose=0)[:, 0]
    np.testing.assert_allclose(out["logit"], keras_logit, atol=1e-4)
    assert np.abs(delta).max() > 1e-2  # the check is not trivially zero
    # hypothetical x one-hot, summed, equals the total contribution (mean over refs)
    actual = (out["hypothetical"] * one_hot(codes)).sum((1, 2))
    np.testing.assert_allclose(actual, out["contrib_sum"].mean(1), atol=1e-4)
    assert out["hypothetical"].shape == (12, 60, 4)


def test_fixed_reference_and_process_stays_eager(trained):
    import tensorflow as tf

    _, path = trained
    codes = toy_data(4, 60, seed=6)[0]
    out = run_deeplift(path, codes, fixed_ref=np.full((60, 4), 0.25, np.float32))
    assert out["contrib_sum"].shape == (4, 1)
    assert np.abs(out["contrib_sum"][:, 0] - (out["logit"] - out["logit_ref"][:, 0])).max() < 1e-4
    assert tf.executing_eagerly()


def test_exponential_first_layer_is_converted(tmp_path):
    model = toy_model(length=40, train=False, seed=2, layers=[
        keras.layers.Conv1D(4, 5, activation="exponential"), keras.layers.AveragePooling1D(4),
        keras.layers.Flatten(), keras.layers.Dense(1)])
    model.layers[0].set_weights([w * 0.3 for w in model.layers[0].get_weights()])
    path = _save(model, tmp_path)
    codes = toy_data(6, 40, seed=7)[0]
    ref_codes = np.random.default_rng(1).integers(0, 4, (6, 2, 40)).astype(np.uint8)
    out = run_deeplift(path, codes, ref_codes=ref_codes, mode="Rescale")
    keras_logit = keras.Model(model.inputs, model.layers[-2].output).predict(
        one_hot(codes), verbose=0)[:, 0]
    np.testing.assert_allclose(out["logit"], keras_logit, atol=1e-4)
    delta = out["logit"][:, None] - out["logit_ref"]
    assert np.abs(out["contrib_sum"] - delta).max() < 1e-4


def test_exponential_stays_finite_where_input_equals_reference(tmp_path):
    # Regression: deeplift evaluates its Rescale fallback gradient (used where input and
    # reference agree) at the output reference; for exp that was exp(exp(.)), inf once the
    # activation passed 88, and 0 * inf made NaN multipliers on trained models.
    model = toy_model(length=40, train=False, seed=2, layers=[
        keras.layers.Conv1D(4, 5, activation="exponential"), keras.layers.AveragePooling1D(4),
        keras.layers.Flatten(), keras.layers.Dense(1)])
    weights = model.layers[0].get_weights()
    model.layers[0].set_weights([weights[0] * 4, weights[1] + 3])
    path = _save(model, tmp_path)
    codes = toy_data(6, 40, seed=7)[0]
    ref_codes = np.repeat(codes[:, None], 2, axis=1)
    ref_codes[:, :, 20:] = np.random.default_rng(1).integers(0, 4, (6, 2, 20))  # half equal
    out = run_deeplift(path, codes, ref_codes=ref_codes, mode="Rescale")
    assert np.isfinite(out["hypothetical"]).all()
    delta = out["logit"][:, None] - out["logit_ref"]
    np.testing.assert_allclose(out["contrib_sum"], delta, rtol=1e-4, atol=1e-3)


def test_unknown_mode_is_reported_from_the_child(trained):
    _, path = trained
    with pytest.raises(InputError, match="unknown DeepLIFT mode"):
        run_deeplift(path, toy_data(2, 60)[0], fixed_ref=np.zeros((60, 4), np.float32),
                     mode="Gradient")


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear", "exponential"])
def test_rescale_fallback_is_the_gradient_where_input_equals_reference(tmp_path, activation):
    # With every reference equal to its input, every unit takes deeplift's Rescale fallback
    # (|delta| < 1e-7), so the multipliers must be Keras's gradient; with ref == x the
    # hypothetical contribution is m_b - m_{x_i}. deeplift 0.6.13 evaluates the fallback
    # derivative at the output reference (sigma'(sigma(z))): before the fix in
    # deeplift_compat this test failed by 1.09 (tanh) and 0.66 (sigmoid).
    hidden = "relu" if activation == "exponential" else activation
    model = toy_model(length=40, seed=3, n=300, layers=[
        keras.layers.Conv1D(8, 5), keras.layers.Activation(activation),
        keras.layers.AveragePooling1D(4), keras.layers.Flatten(), keras.layers.Dense(8),
        keras.layers.Activation(hidden), keras.layers.Dense(1)])
    codes = toy_data(6, 40, seed=4)[0]
    x = one_hot(codes)
    out = run_deeplift(_save(model, tmp_path), codes, ref_codes=codes[:, None], mode="Rescale")
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logit = tf.reduce_sum(keras.Model(model.inputs, model.layers[-2].output)(xt)[:, 0])
    g = tape.gradient(logit, xt).numpy()
    expected = g - (g * x).sum(-1, keepdims=True)
    scale = np.abs(expected).max()
    assert scale > 1e-3
    np.testing.assert_allclose(out["hypothetical"], expected, atol=1e-5 * scale)
