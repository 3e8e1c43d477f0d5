"""Integrated gradients (peak2motif.explain.integrated_gradients) on LSTM and attention models."""

from __future__ import annotations

import keras  # noqa: F401  (a broken TensorFlow fails these tests instead of skipping them)
import numpy as np
import pytest
from explain_toys import built, random_codes, small_cfg
from peak2motif.explain import explain
from peak2motif.explain import integrated_gradients as ig
from peak2motif.sequences import dinuc_shuffle_codes, one_hot

LENGTH = 100


@pytest.fixture(scope="module", params=["cnn_lstm", "cnn_attention"])
def trained(request):
    """A small model of the architecture, trained until it separates the toy data."""
    cfg = small_cfg(architecture=request.param, conv_blocks=[
        {"filters": 16, "kernel_size": 9, "pool_size": 4},
        {"filters": 16, "kernel_size": 3, "pool_size": 2}], dense_blocks=[{"units": 16}])
    return built(cfg, LENGTH, epochs=6, n=600)


def _pairs(n: int, r: int, seed: int):
    codes = random_codes(n, LENGTH, seed)
    rng = np.random.RandomState(seed)
    return one_hot(codes), one_hot(np.stack([dinuc_shuffle_codes(c, rng, r) for c in codes]))


def test_quadrature_rules_integrate_exactly_what_they_promise():
    for rule, degree in (("gauss_legendre", 2 * 5 - 1), ("midpoint", 1)):
        a, w = ig.quadrature(5, rule)
        assert np.isclose(w.sum(), 1.0) and ((a > 0) & (a < 1)).all()
        assert np.isclose((w * a**degree).sum(), 1 / (degree + 1))


def test_compiled_matches_the_plain_implementation(trained):
    x, refs = _pairs(4, 2, seed=1)
    fast = explain(trained, x, refs, method="integrated_gradients", steps=16, batch_size=64)
    plain = ig.simple(trained, x, refs, steps=16)
    scale = np.abs(plain.hypothetical).max()
    assert scale > 1e-3
    np.testing.assert_allclose(fast.hypothetical, plain.hypothetical, atol=1e-5 * scale)
    np.testing.assert_allclose(fast.contrib_sum, plain.contrib_sum, atol=1e-5)
    np.testing.assert_allclose(fast.logit, plain.logit, atol=1e-5)
    np.testing.assert_allclose(fast.logit_ref, plain.logit_ref, atol=1e-5)


def test_completeness_error_falls_with_steps_and_stays_under_the_bound(trained):
    x, refs = _pairs(16, 3, seed=2)
    mean_error = {}
    for steps in (8, 32, ig.DEFAULT_STEPS, 128):
        out = explain(trained, x, refs, method="integrated_gradients", steps=steps)
        err = out.diagnostics["completeness_error"]
        assert err.shape == (16, 3)
        np.testing.assert_allclose(err, out.summation_errors())
        assert err.max() <= out.diagnostics["completeness_bound"], (steps, err.max())
        mean_error[steps] = float(err.mean())
    # about 1/steps (the ReLU trunk makes the integrand jump); required: 2x per 4x steps
    assert mean_error[32] < mean_error[8] / 2 and mean_error[128] < mean_error[32] / 2, mean_error
    delta = np.abs(out.logit[:, None] - out.logit_ref).max()
    assert delta > 0.1  # the models are not constant: the bound is not trivially met
    assert out.diagnostics["completeness_bound"] == pytest.approx(
        ig.BOUND_FACTOR / 128 * max(1.0, delta), rel=1e-5)


def test_a_broken_quadrature_breaks_the_bound(trained, monkeypatch):
    # The bound is a check: weights that lose half the path integral (a lost factor) fail it.
    x, refs = _pairs(16, 3, seed=2)
    right = ig.quadrature

    def half_weights(steps, rule):
        a, w = right(steps, rule)
        return a, w / 2

    monkeypatch.setattr(ig, "quadrature", half_weights)
    out = explain(trained, x, refs, method="integrated_gradients")
    assert out.diagnostics["completeness_max_abs_error"] > out.diagnostics["completeness_bound"]


def test_ig_is_exact_on_a_linear_path_model():
    # Average pooling and linear activations only: the gradient is constant along the path.
    model = built(small_cfg(first_activation="linear", activation="linear", batch_norm=False),
                  60, epochs=0)
    codes = random_codes(3, 60, seed=3)
    rng = np.random.RandomState(0)
    refs = one_hot(np.stack([dinuc_shuffle_codes(c, rng, 2) for c in codes]))
    out = explain(model, one_hot(codes), refs, method="integrated_gradients", steps=1)
    assert out.summation_errors().max() < 1e-5
