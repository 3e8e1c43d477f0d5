"""Method ``integrated_gradients``: any differentiable model (LSTM, attention, ...).

For each (sequence x, reference r) pair the multipliers are the gradients of the logit
averaged along the straight path from r to x, ``m = sum_k w_k grad f(r + a_k (x - r))``, a
quadrature of ``int_0^1 grad f(r + a (x - r)) da``; contributions are ``(x - r) * m`` and the
hypothetical contributions come from the shared projection
(:func:`peak2motif.explain.core.hypothetical_contributions`).

Completeness (``sum (x - r) * m = f(x) - f(r)``) holds only up to the quadrature error, so the
method is not exact: each run reports the error of every pair in
``diagnostics["completeness_error"]`` and the bound a check should hold it to.

:func:`simple` is a deliberately plain second implementation (an eager loop over the
quadrature nodes with a ``GradientTape``), used to cross-check the compiled one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from peak2motif.config import with_defaults
from peak2motif.errors import InputError
from peak2motif.explain.core import (
    Explanation,
    Method,
    contribution_sums,
    hypothetical_contributions,
    register,
)
from peak2motif.explain.keras_tools import check_task, logit_model, pad_rows, padded_batches

RULES = ("gauss_legendre", "midpoint")
# The defaults are the schema's (`attribution: ig_steps`, `ig_rule`), written down once there;
# how the steps were chosen is in its description and BENCHMARKS.md.
_DEFAULTS = with_defaults("attribution")
DEFAULT_STEPS = _DEFAULTS["ig_steps"]
DEFAULT_RULE = _DEFAULTS["ig_rule"]
BOUND_FACTOR = 4.0


def quadrature(steps: int, rule: str = DEFAULT_RULE) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``a_k`` in (0, 1) and weights ``w_k`` (summing to 1) of a ``steps``-point rule.

    ``gauss_legendre`` is exact for polynomials of degree ``2 * steps - 1`` along the path;
    ``midpoint`` is the Riemann midpoint rule (Sundararajan et al. use the right Riemann sum,
    whose error is first order).

    Returns
    -------
    alphas ``(steps,)`` and weights ``(steps,)``, float64.
    """
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}",
                         key="attribution: ig_steps", fix="use e.g. 32")
    if rule == "gauss_legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1 / steps)
    raise InputError(f"unknown quadrature rule {rule!r}", key="attribution: ig_rule",
                     fix=f"use one of {', '.join(RULES)}")


def completeness_bound(logit: np.ndarray, logit_ref: np.ndarray, steps: int,
                       factor: float = BOUND_FACTOR) -> float:
    """The bound a check should hold the completeness error of every pair to.

    ``factor / steps`` times the larger of 1 and the largest |logit - logit_ref| of the run.
    The quadrature error falls as 1/steps and was at most 0.7/steps of that largest change on
    trained LSTM and attention models, so the default factor of 4 leaves a margin of about 5;
    a broken implementation (a lost factor, wrong nodes or weights) misses by the size of the
    change itself. The floor of 1 logit keeps a run of near-equal logits from demanding
    round-off accuracy.
    """
    delta = np.abs(logit[:, None] - logit_ref)
    largest = float(delta.max()) if delta.size else 0.0
    return float(factor / steps * max(1.0, largest))


def unsupported(model_cfg: Mapping) -> list[str]:
    """Integrated gradients explains every architecture of the schema."""
    return []


def _step(logits, n_refs: int, steps: int, task_index: int, batch: int, length: int,
          alphas: np.ndarray, weights: np.ndarray, jit_compile: bool):
    """Compiled IG over ``batch`` sequences, their references and the quadrature nodes."""
    import tensorflow as tf
    import tensorflow.experimental.numpy as tnp

    spec = [tf.TensorSpec((batch, length, 4), tf.float32),
            tf.TensorSpec((batch * n_refs, length, 4), tf.float32)]
    a = tf.constant(alphas.reshape(1, steps, 1, 1), tf.float32)
    w = tf.constant(weights.reshape(1, steps, 1, 1), tf.float32)

    @tf.function(input_signature=spec, jit_compile=jit_compile, autograph=False)
    def step(x, refs):
        pairs = batch * n_refs
        xr = tf.repeat(x, n_refs, axis=0)
        path = tf.reshape(refs[:, None] + a * (xr - refs)[:, None], (pairs * steps, length, 4))
        with tf.GradientTape() as tape:
            tape.watch(path)
            total = tf.reduce_sum(logits(path, training=False)[:, task_index])
        grads = tf.reshape(tape.gradient(total, path), (pairs, steps, length, 4))
        m = tf.reshape(tf.reduce_sum(w * grads, axis=1), (batch, n_refs, length, 4))
        ends = logits(tf.concat([x, refs], 0), training=False)[:, task_index]
        r = tf.reshape(refs, (batch, n_refs, length, 4))
        return (hypothetical_contributions(m, r, xp=tnp), ends[:batch],
                tf.reshape(ends[batch:], (batch, n_refs)), contribution_sums(m, x, r, xp=tnp))

    return step


def run(model, onehot: np.ndarray, refs: np.ndarray, *, task_index: int = 0,
        batch_size: int = 1024, steps: int = DEFAULT_STEPS, rule: str = DEFAULT_RULE,
        bound_factor: float = BOUND_FACTOR, jit_compile: bool = False) -> Explanation:
    """Integrated gradients of the logit of ``task_index``, one path per (x, ref) pair.

    Parameters
    ----------
    onehot
        ``(N, L, 4)`` float32.
    refs
        ``(N, R, L, 4)`` float32.
    batch_size
        Path points per compiled call: ``batch_size // (R * steps)`` sequences (at least 1).
    steps, rule
        The quadrature (:func:`quadrature`).
    bound_factor
        Sets ``diagnostics["completeness_bound"]`` (:func:`completeness_bound`).

    Returns
    -------
    :class:`Explanation`; ``diagnostics`` has ``completeness_error`` ``(N, R)``,
    ``completeness_max_abs_error``, ``completeness_bound``, ``steps``, ``rule`` and timings.
    """
    import tensorflow as tf

    t0 = time.perf_counter()
    n, r, length, _ = refs.shape
    logits = logit_model(model)
    check_task(logits, task_index)
    alphas, weights = quadrature(steps, rule)
    b = max(1, min(n, batch_size // (r * steps)))
    step = _step(logits, r, steps, task_index, b, length, alphas, weights, jit_compile)
    step.get_concrete_function()
    t1 = time.perf_counter()
    hyp = np.empty((n, length, 4), np.float32)
    logit = np.empty(n, np.float32)
    logit_ref = np.empty((n, r), np.float32)
    contrib_sum = np.empty((n, r), np.float32)
    for s0, s1 in padded_batches(n, b):
        k = s1 - s0
        x = tf.constant(pad_rows(onehot[s0:s1], b), tf.float32)
        rr = tf.constant(pad_rows(refs[s0:s1], b).reshape(b * r, length, 4), tf.float32)
        h, lx, lr, cs = step(x, rr)
        hyp[s0:s1], logit[s0:s1] = h.numpy()[:k], lx.numpy()[:k]
        logit_ref[s0:s1], contrib_sum[s0:s1] = lr.numpy()[:k], cs.numpy()[:k]
    return _explanation(hyp, logit, logit_ref, contrib_sum, "integrated_gradients", steps, rule,
                        bound_factor, setup_seconds=t1 - t0,
                        score_seconds=time.perf_counter() - t1, sequences_per_call=b)


def _explanation(hyp, logit, logit_ref, contrib_sum, name, steps, rule, bound_factor,
                 **timings) -> Explanation:
    out = Explanation(hyp, logit, logit_ref, contrib_sum, name)
    err = out.summation_errors()
    out.diagnostics.update(
        completeness_error=err, completeness_max_abs_error=float(err.max()) if err.size else 0.0,
        completeness_bound=completeness_bound(logit, logit_ref, steps, bound_factor),
        steps=steps, rule=rule, **timings)
    return out


def simple(model, onehot: np.ndarray, refs: np.ndarray, *, task_index: int = 0,
           steps: int = DEFAULT_STEPS, rule: str = DEFAULT_RULE,
           bound_factor: float = BOUND_FACTOR) -> Explanation:
    """The plain second implementation: an eager loop over the nodes, one tape per node.

    Same arguments and result as :func:`run`, for a small sample (it is slow): no compiled
    function, no batching, no path tensor; logits from a plain forward pass.
    """
    import tensorflow as tf

    logits = logit_model(model)
    check_task(logits, task_index)
    n, r, length, _ = refs.shape
    x = np.repeat(onehot, r, axis=0).astype(np.float32)
    ref = np.asarray(refs, np.float32).reshape(n * r, length, 4)
    total = np.zeros_like(x, dtype=np.float64)
    for alpha, weight in zip(*quadrature(steps, rule), strict=True):
        point = tf.constant(ref + np.float32(alpha) * (x - ref))
        with tf.GradientTape() as tape:
            tape.watch(point)
            y = logits(point, training=False)[:, task_index]
        total += weight * tape.gradient(y, point).numpy()
    m = total.reshape(n, r, length, 4)
    refs64 = ref.reshape(n, r, length, 4).astype(np.float64)
    logit = np.asarray(logits(tf.constant(onehot, tf.float32), training=False))[:, task_index]
    logit_ref = np.asarray(logits(tf.constant(ref), training=False))[:, task_index]
    return _explanation(hypothetical_contributions(m, refs64).astype(np.float32), logit,
                        logit_ref.reshape(n, r),
                        contribution_sums(m, onehot.astype(np.float64), refs64), "ig_simple",
                        steps, rule, bound_factor)


METHOD = register(Method(
    name="integrated_gradients", run=run, exact=False, unsupported=unsupported,
    options={"steps": DEFAULT_STEPS, "rule": DEFAULT_RULE, "bound_factor": BOUND_FACTOR,
             "jit_compile": False},
    batch_size=1024,
    description="integrated gradients (path from each reference to the input); approximate",
))
