"""The independent check of hypothetical contributions (peak2motif.explain.checks)."""

from __future__ import annotations

import dataclasses

import keras  # noqa: F401  (a broken TensorFlow fails these tests instead of skipping them)
import numpy as np
import pytest
from explain_toys import built, random_codes, small_cfg
from peak2motif import explain as xp
from peak2motif.explain import checks as xchecks
from peak2motif.sequences import one_hot

# The stage's bound (attribution: crosscheck_tolerance, relative to the largest hypothetical
# value): native DeepLIFT measured 2e-6 to 9e-5 against the float64 implementation on the
# trained tiny-workflow models, and the methods here 1e-7 to 5e-5.
BOUND = 1e-3


@pytest.fixture(scope="module")
def default_like():
    return built(small_cfg(), 60, epochs=3)


@pytest.mark.parametrize("case, method, against", [
    ("default", "deeplift", "deeplift_simple"),
    ("default", "deeplift_package", "deeplift_simple"),
    ("global_max", "deeplift", "deeplift_simple"),
    ("gelu_max_pool", "deeplift", "deeplift_simple"),
    ("lstm", "integrated_gradients", "ig_simple"),
])
def test_honest_methods_pass(default_like, case, method, against):
    models = {
        "default": lambda: default_like,
        "global_max": lambda: built(small_cfg(global_pooling="max"), 60, epochs=3),
        "gelu_max_pool": lambda: built(small_cfg(first_activation="gelu", conv_blocks=[
            {"filters": 8, "kernel_size": 7, "pool_size": 2, "pool_type": "max"}]), 60, epochs=3),
        "lstm": lambda: built(small_cfg(architecture="cnn_lstm"), 60, epochs=3),
    }
    model = models[case]()
    sample = one_hot(random_codes(8, 60, seed=4))
    options = {"steps": 16} if method == "integrated_gradients" else {}
    result = xp.independent_hypothetical_check(model, sample, method, **options)
    assert result.against == against
    assert result.scale > 1e-3
    assert result.relative < BOUND / 10, result


def test_shap_is_the_float32_alternative(default_like):
    sample = one_hot(random_codes(8, 60, seed=4))
    result = xp.independent_hypothetical_check(default_like, sample, "deeplift", against="shap")
    assert result.against == "shap" and result.relative < 1e-3, result


def _corrupted(noise: float):
    """``deeplift`` with noise of ``noise`` times the largest value added to the hypothetical
    contributions of the three unobserved bases (the observed base is left exact, so
    summation-to-delta cannot see it)."""
    honest = xp.METHODS["deeplift"]

    def run(model, onehot, refs, **kw):
        out = honest.run(model, onehot, refs, **kw)
        rng = np.random.default_rng(0)
        scale = np.abs(out.hypothetical).max()
        out.hypothetical = out.hypothetical + (1 - onehot) * noise * scale * rng.standard_normal(
            onehot.shape).astype(np.float32)
        return out

    return dataclasses.replace(honest, name=f"deeplift_noise_{noise}", run=run)


@pytest.mark.parametrize("noise", [10.0, 0.01])
def test_noise_in_unobserved_bases_fails(default_like, monkeypatch, noise):
    method = _corrupted(noise)
    monkeypatch.setitem(xp.METHODS, method.name, method)
    sample = one_hot(random_codes(8, 60, seed=4))
    refs = xchecks.uniform_references(8, 60)
    out = xp.explain(default_like, sample, refs, method=method.name)
    assert out.summation_errors().max() < 1e-5  # summation-to-delta does not notice
    result = xp.independent_hypothetical_check(default_like, sample, method.name)
    assert result.relative > BOUND, result


def test_shap_multipliers_are_deeplift_multipliers_at_every_channel(default_like):
    # With ref == x (Delta = 0) native DeepLIFT gives m_b - m_{x_i}; with the uniform reference
    # shap gives m_b - mean_c m_c. Both differ from the multipliers by a per-position constant
    # only, so their differences between bases must agree.
    sample = one_hot(random_codes(4, 60, seed=5))
    mult = xchecks.shap_multipliers(default_like, sample)
    ours = xp.explain(default_like, sample, xchecks.uniform_references(4, 60)).hypothetical
    # shap computes in float32: 1.2e-6 measured here, against differences of up to 6e-2
    np.testing.assert_allclose(ours - ours[..., :1], mult - mult[..., :1], atol=1e-5)
    assert np.abs(mult - mult[..., :1]).max() > 1e-3
