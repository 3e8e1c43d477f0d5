"""The attribution seam (peak2motif.explain): registry, config-time checks, the shared
projection, exactness on a linear model, and references that keep N."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from explain_toys import built, random_codes, small_cfg
from peak2motif import explain as xp
from peak2motif.attribution import dinucleotide_counts
from peak2motif.config import load_schema
from peak2motif.errors import InputError
from peak2motif.sequences import N_CODE, dinuc_shuffle_codes, one_hot

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


# --- registry and config-time checks ------------------------------------------------------


def test_registry_declares_each_method():
    assert {"deeplift", "integrated_gradients", "deeplift_package"} <= set(xp.METHODS)
    assert xp.METHODS["deeplift"].exact and xp.METHODS["deeplift_package"].exact
    assert not xp.METHODS["integrated_gradients"].exact
    for name, method in xp.METHODS.items():
        assert method.name == name and method.description


def test_config_time_checks_import_no_tensorflow():
    code = (
        "import sys; import peak2motif.explain as x; x.check_method({}, 'auto');"
        "x.check_method({'architecture': 'cnn_lstm'}, 'auto');"
        "assert x.default_method({'architecture': 'cnn_attention'}) == 'integrated_gradients';"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SCRIPTS)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("arch, expected", [
    ("cnn", "deeplift"), ("cnn_lstm", "integrated_gradients"),
    ("cnn_attention", "integrated_gradients")])
def test_default_method(arch, expected):
    assert xp.default_method({"architecture": arch}) == expected
    # auto never picks a refused method, and check_method says which one runs
    assert xp.check_method({"architecture": arch}, "auto") == expected


def _block(**kw):
    return {"filters": 8, "kernel_size": 5, **kw}


@pytest.mark.parametrize("method, model_cfg, message", [
    ("deeplift_package", {"conv_blocks": [_block(dilation=2)]}, "dilation 2"),
    ("deeplift_package", {"conv_blocks": [_block(pool_type="max")]}, "pool_type max"),
    ("deeplift_package", {"global_pooling": "max"}, "global_pooling max"),
    ("deeplift_package", {"architecture": "cnn_lstm"}, "architecture cnn_lstm"),
    ("deeplift_package", {"architecture": "cnn_attention"}, "architecture cnn_attention"),
    ("deeplift_package", {"first_activation": "elu"}, "first_activation elu"),
    ("deeplift_package", {"first_activation": "gelu"}, "first_activation gelu"),
    ("deeplift_package", {"activation": "softplus"}, "activation softplus"),
    ("deeplift_package", {"output_activation": "softplus"}, "output_activation softplus"),
    ("deeplift", {"architecture": "cnn_lstm"}, "cnn_lstm"),
    ("deeplift", {"architecture": "cnn_attention"}, "cnn_attention"),
])
def test_check_method_refuses_what_a_method_cannot_explain(method, model_cfg, message):
    with pytest.raises(InputError, match=message) as err:
        xp.check_method(model_cfg, method)
    text = str(err.value)
    assert "attribution: method" in text and "Fix:" in text
    assert "integrated_gradients" in text  # a method that works is named


def test_check_method_refuses_unknown_method():
    with pytest.raises(InputError, match="unknown attribution method 'shap'"):
        xp.check_method({}, "shap")


def _schema_options() -> list[tuple[str, object]]:
    """Every enum value of the model section's keys that shape the network."""
    props = load_schema(SCRIPTS.parent / "config" / "config.schema.yaml")["properties"]
    model = props["model"]["properties"]
    block = model["conv_blocks"]["items"]["properties"]
    options = [(key, value) for key in ("architecture", "first_activation", "activation",
                                        "global_pooling", "output_activation")
               for value in model[key]["enum"]]
    options += [("pool_type", value) for value in block["pool_type"]["enum"]]
    options += [("dilation", 2), ("batch_norm", False), ("dense_blocks", [])]
    return options


def _cfg_with(key, value) -> dict:
    if key in ("pool_type", "dilation"):
        return small_cfg(conv_blocks=[{"filters": 8, "kernel_size": 7, "pool_size": 2, key: value},
                                      {"filters": 8, "kernel_size": 3, "pool_size": 2}])
    return small_cfg(**{key: value})


@pytest.mark.parametrize("key, value", _schema_options())
def test_what_check_method_accepts_native_methods_explain_exactly(key, value):
    # The promise behind check_method: a configuration it accepts is explained, and an exact
    # method is exact on it (every schema option, one at a time, on a tiny untrained model).
    cfg = _cfg_with(key, value)
    model = built(cfg, length=60, epochs=0)
    codes = random_codes(3, 60, seed=1)
    refs = one_hot(np.stack([dinuc_shuffle_codes(c, np.random.RandomState(0), 2) for c in codes]))
    for name in ("deeplift", "integrated_gradients"):
        try:
            xp.check_method(cfg, name)
        except InputError:
            assert name == "deeplift" and cfg["architecture"] != "cnn"
            continue
        options = {"steps": 8} if name == "integrated_gradients" else {}
        out = xp.explain(model, one_hot(codes), refs, method=name, **options)
        assert np.isfinite(out.hypothetical).all() and out.hypothetical.shape == (3, 60, 4)
        if xp.METHODS[name].exact:
            assert out.summation_errors().max() < 1e-5, (key, value)


def test_explain_refuses_bad_shapes_and_options():
    model = built(small_cfg(), epochs=0)
    x = one_hot(random_codes(2, 60))
    with pytest.raises(ValueError, match=r"refs must be \(N, R, L, 4\)"):
        xp.explain(model, x, x)
    with pytest.raises(InputError, match="no option"):
        xp.explain(model, x, x[:, None], method="deeplift", steps=4)
    with pytest.raises(InputError, match="task index 3 is out of range"):
        xp.explain(model, x, x[:, None], task_index=3)


# --- the shared projection ------------------------------------------------------------------


def test_hypothetical_projection_by_hand():
    m = np.array([[[[1.0, 2.0, 3.0, 4.0]], [[0.0, 0.0, 0.0, 8.0]]]])  # (1, R=2, L=1, 4)
    refs = np.array([[[[1.0, 0.0, 0.0, 0.0]], [[0.25, 0.25, 0.25, 0.25]]]])
    # ref 1 (A): m - m_A = [0, 1, 2, 3]; ref 2 (uniform): m - mean(m) = [-2, -2, -2, 6]
    np.testing.assert_allclose(xp.hypothetical_contributions(m, refs), [[[-1.0, -0.5, 0, 4.5]]])
    x = np.array([[[0.0, 0.0, 0.0, 1.0]]])
    np.testing.assert_allclose(xp.contribution_sums(m, x, refs), [[3.0, 6.0]])


@pytest.fixture(scope="module")
def linear_model():
    import keras

    keras.utils.set_random_seed(4)
    return keras.Sequential([
        keras.Input((30, 4)), keras.layers.Conv1D(3, 5, activation="linear"),
        keras.layers.Flatten(), keras.layers.Dense(2, name="logits"),
        keras.layers.Activation("sigmoid", name="output"),
    ])


def effective_weights(model, task: int) -> np.ndarray:
    """``(L, 4)`` weights of the linear map input -> logit ``task`` (numpy, from the kernels)."""
    kernel = model.layers[0].get_weights()[0]  # (k, 4, F)
    dense = model.layers[2].get_weights()[0][:, task]  # (L' * F,)
    k, _, f = kernel.shape
    out_len = len(dense) // f
    w = np.zeros((out_len + k - 1, 4))
    for p in range(out_len):
        w[p : p + k] += kernel @ dense[p * f : (p + 1) * f]
    return w


@pytest.mark.parametrize("method", ["deeplift", "integrated_gradients", "deeplift_package"])
def test_linear_model_hypothetical_contributions_are_the_weights(linear_model, method):
    # For f(x) = sum W x + b every method's multiplier is W, so the hypothetical contribution
    # of base b at i is exactly W[i, b] - sum_c rbar[i, c] W[i, c], rbar the mean reference:
    # the weights, each position shifted by the reference-weighted mean of its weights.
    codes = random_codes(4, 30, seed=2)
    ref_codes = np.stack([dinuc_shuffle_codes(c, np.random.RandomState(i), 3)
                          for i, c in enumerate(codes)])
    refs = one_hot(ref_codes)
    w = effective_weights(linear_model, task=1)
    out = xp.explain(linear_model, one_hot(codes), refs, method=method, task_index=1)
    expected = w[None] - (refs.mean(1) * w[None]).sum(-1, keepdims=True)
    np.testing.assert_allclose(out.hypothetical, expected, atol=2e-6)
    assert np.abs(w).max() > 0.1
    assert out.summation_errors().max() < 1e-5


# --- references that keep N -------------------------------------------------------------------


def test_shuffle_keeps_n_and_segment_dinucleotides():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 4, 200).astype(np.uint8)
    codes[[0, 1, 50, 51, 52, 120, 199]] = N_CODE
    codes[130] = N_CODE  # a 1-bp segment between Ns is left as it is
    codes[132] = N_CODE
    shuf = dinuc_shuffle_codes(codes, np.random.RandomState(0), 5)
    assert shuf.shape == (5, 200) and shuf.dtype == np.uint8
    assert ((shuf == N_CODE) == (codes == N_CODE)[None]).all()
    bases = np.concatenate([[False], codes != N_CODE, [False]])
    for start, stop in zip(np.flatnonzero(~bases[:-1] & bases[1:]),
                           np.flatnonzero(bases[:-1] & ~bases[1:]), strict=True):
        np.testing.assert_array_equal(dinucleotide_counts(shuf[:, start:stop]),
                                      np.repeat(dinucleotide_counts(codes[start:stop])[None], 5, 0))
    assert (shuf != codes).any(1).all()  # every shuffle differs from the input
    again = dinuc_shuffle_codes(codes, np.random.RandomState(0), 5)
    np.testing.assert_array_equal(shuf, again)  # seeded
    assert dinuc_shuffle_codes(np.full(10, N_CODE, np.uint8), np.random.RandomState(0),
                               2).tolist() == [[N_CODE] * 10] * 2


def _deeplift_per_run(codes: np.ndarray, rng, n: int) -> np.ndarray:
    """The shuffle as deeplift 0.6.13 makes it: its ``dinuc_shuffle`` on each N-free run."""
    from deeplift.dinuc_shuffle import dinuc_shuffle
    from peak2motif.sequences import _runs, codes_from_one_hot

    out = np.repeat(codes[None], n, axis=0)
    for a, b in _runs(codes):
        shuffled = np.asarray(dinuc_shuffle(one_hot(codes[a:b]), n, rng))
        out[:, a:b] = codes_from_one_hot(shuffled.reshape(n, b - a, 4))
    return out


@pytest.mark.parametrize("walks", ["python", "batched"])
@pytest.mark.parametrize("kind", ["RandomState", "Generator"])
def test_batched_shuffles_are_deeplifts_exactly(walks, kind, monkeypatch):
    # dinuc_shuffles replaces deeplift's per-base Python walk; the references (and so every
    # stored contribution) must not change: the same draws in the same order, the same arrays.
    from peak2motif import sequences

    monkeypatch.setattr(sequences, "BATCHED_WALKS", 10**9 if walks == "python" else 0)
    monkeypatch.setattr(sequences, "SHUFFLE_BLOCK", 3)  # several blocks share the generators
    make = np.random.RandomState if kind == "RandomState" else np.random.default_rng
    g = np.random.default_rng(5)
    for trial in range(40):
        length, rows, n = int(g.integers(1, 90)), int(g.integers(1, 8)), int(g.integers(1, 5))
        codes = g.integers(0, int(g.integers(1, 5)), (rows, length)).astype(np.uint8)
        codes[g.random((rows, length)) < 0.3 * g.random()] = N_CODE
        seeds = g.integers(0, 2**31, rows).tolist()
        got = sequences.dinuc_shuffles(codes, [make(s) for s in seeds], n)
        want = np.stack([_deeplift_per_run(c, make(s), n)
                         for c, s in zip(codes, seeds, strict=True)])
        np.testing.assert_array_equal(got, want, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(dinuc_shuffle_codes(codes[0], make(seeds[0]), n), want[0])
    with pytest.raises(ValueError, match="more sequences than random generators"):
        sequences.dinuc_shuffles(np.zeros((3, 10), np.uint8), [make(0)], 2)


def _moving_n_shuffle(codes: np.ndarray, rng, n: int) -> np.ndarray:
    """The shuffle as it was: deeplift's on the whole one-hot sequence, N a fifth letter."""
    from deeplift.dinuc_shuffle import dinuc_shuffle
    from peak2motif.sequences import codes_from_one_hot

    return codes_from_one_hot(np.asarray(dinuc_shuffle(one_hot(codes), n, rng)))


def _codes_with_n(n_seqs: int, length: int, fraction: float, seed: int) -> np.ndarray:
    """Random codes with ``fraction`` of the positions N, in blocks of 1-10 bp."""
    rng = np.random.default_rng(seed)
    codes = random_codes(n_seqs, length, seed)
    for row in codes:
        while (row == N_CODE).mean() < fraction:
            start, size = int(rng.integers(0, length)), int(rng.integers(1, 11))
            row[start : start + size] = N_CODE
    return codes


def test_stored_contributions_add_up_only_with_n_kept_in_references():
    # What the stage stores is hyp * onehot; its sum must be mean_r(logit - logit_ref). A
    # reference with a base where the input has N gives that position a contribution the
    # all-zero one-hot row drops.
    model = built(small_cfg(), length=60, epochs=2)
    codes = _codes_with_n(12, 60, 0.05, seed=5)
    x = one_hot(codes)
    kept = one_hot(np.stack([dinuc_shuffle_codes(c, np.random.RandomState(i), 4)
                             for i, c in enumerate(codes)]))
    moved = one_hot(np.stack([_moving_n_shuffle(c, np.random.RandomState(i), 4)
                              for i, c in enumerate(codes)]))
    errors = {}
    for name, refs in (("kept", kept), ("moved", moved)):
        out = xp.explain(model, x, refs)
        stored = (out.hypothetical * x).sum((1, 2))
        errors[name] = np.abs(stored - (out.logit[:, None] - out.logit_ref).mean(1)).max()
    assert errors["kept"] < 1e-5
    assert errors["moved"] > 1e-3, errors  # the old shuffle moved N and broke the sums


def test_softmax_logits_are_explained_centred():
    """A multiclass model's class logits are explained minus their mean over the classes
    (softmax ignores a shift shared by all logits); the predictions are unchanged, and the
    native DeepLIFT adds up to the centred logit's difference."""
    import keras
    from peak2motif.explain.keras_tools import logit_model, softmax_output
    from peak2motif.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(small_cfg(), 60, 3, "multiclass", seed=0)
    assert softmax_output(model)
    onehot = one_hot(random_codes(8, 60, seed=1))
    logits = np.asarray(logit_model(model)(onehot))
    np.testing.assert_allclose(logits.sum(1), 0, atol=1e-5)
    raw = np.asarray(keras.Model(model.inputs, model.layers[-1].input)(onehot))
    np.testing.assert_allclose(logits, raw - raw.mean(1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(keras.ops.softmax(logits), model(onehot), atol=1e-6)
    refs = one_hot(np.stack([dinuc_shuffle_codes(c, np.random.default_rng(i))
                             for i, c in enumerate(random_codes(8, 60, seed=1))]))[:, None]
    res = xp.explain(model, onehot, refs, method="deeplift", task_index=1)
    np.testing.assert_allclose(res.logit, logits[:, 1], atol=1e-5)
    assert res.summation_errors().max() < 1e-4
