"""Method ``deeplift``: native TF2 DeepLIFT, Rescale rule (= DeepSHAP with per-sequence refs).

No TF1, no model conversion, no child process: the model is cloned with its nonlinear layers
replaced (:mod:`peak2motif.explain.rescale`) and one compiled function per run gives
hypothetical contributions, logits and per-pair sums. Exact (summation-to-delta) for every
model it accepts: Sequential or functional; Conv1D at any dilation and padding; average and
max pooling; global average and max pooling; BatchNormalization; Dense; Add and Concatenate;
every activation of the schema.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping

import numpy as np

from peak2motif.explain.core import Explanation, Method, register
from peak2motif.explain.keras_tools import check_task, logit_model, pad_rows, padded_batches

# Measured on trained sigmoid/tanh/exponential models against float64 (BENCHMARKS.md): the
# float32 secant's round-off (up to 7e-3 of the largest hypothetical value on a saturated
# sigmoid model) fell to at most 6e-6 with this band; ReLU models are unchanged (1e-7).
FLOAT32_BAND = 1e-2


def unsupported(model_cfg: Mapping) -> list[str]:
    """Why the ``model:`` section cannot be explained by native DeepLIFT (empty: it can)."""
    arch = model_cfg["architecture"]
    if arch in ("cnn_lstm", "cnn_attention"):
        return [f"architecture {arch} has LSTM/attention layers, which have no DeepLIFT rule "
                "here (integrated_gradients explains them)"]
    return []


# The steps prepared for the last model explained. A job explains its chunks (2,000 sequences
# each by default) and tasks with one model; each call cloned, traced and compiled again, about
# 1 s a chunk (a 100k-peak job of 200k sequences paid it 100 times).
_LAST: dict = {"model": None, "clones": {}, "steps": {}}


def _prepared(model, task_index, r, b, length, eps, band, fuse, jit_compile):
    """``(step, dtype, reused)``: the compiled step for these settings, made once per model.

    The clone (and its fused kernels, compiled on first use) is shared by every task and
    batch shape; a step is traced once per (task, shape). Only the last model is kept.
    """
    from peak2motif.explain import rescale

    if _LAST["model"] is None or _LAST["model"]() is not model:
        _LAST.update(model=weakref.ref(model), clones={}, steps={})
    key = (r, eps, band, fuse)
    if key not in _LAST["clones"]:
        logits = logit_model(model)
        if band is None:
            band = FLOAT32_BAND if np.dtype(logits.inputs[0].dtype) == np.float32 else 0.0
        _LAST["clones"][key] = (logits, rescale.rescale_clone(logits, r, eps, band, fuse))
    else:  # weights copied into the clone (not shared) follow the model's current ones
        rescale.refresh_weights(_LAST["clones"][key][1])
    logits, clone = _LAST["clones"][key]
    check_task(logits, task_index)
    skey = (key, task_index, b, length, jit_compile)
    reused = skey in _LAST["steps"]
    if not reused:
        step = rescale.deeplift_step(clone, r, task_index, b, length, jit_compile)
        step.get_concrete_function()  # the one trace, timed as setup
        _LAST["steps"][skey] = step
    return _LAST["steps"][skey], np.dtype(clone.inputs[0].dtype), reused


def run(model, onehot: np.ndarray, refs: np.ndarray, *, task_index: int = 0,
        batch_size: int = 1408, eps: float = 1e-7, band: float | None = None,
        fuse: bool = True, jit_compile: bool = False) -> Explanation:
    """Native DeepLIFT (Rescale) of the logit of ``task_index``.

    Parameters
    ----------
    onehot
        ``(N, L, 4)`` float32.
    refs
        ``(N, R, L, 4)`` float32.
    batch_size
        Rows per compiled call, sequences and references together: ``batch_size // (R + 1)``
        sequences per call (at least 1).
    eps
        Below this input difference a nonlinearity uses its derivative (deeplift's 1e-7).
    band
        Relative input difference below which a smooth nonlinearity's secant is taken as its
        derivative at the midpoint (:func:`peak2motif.explain.rescale._rescale_core`). None:
        ``FLOAT32_BAND`` for float32 models, 0 (the plain secant) for float64 ones.
    fuse
        Compute each activation's values and multipliers in one XLA-compiled kernel: 2-3x
        faster per call on CPU; a fresh job's fixed cost was 0.04 s higher with it
        (BENCHMARKS.md).
    jit_compile
        Compile the whole step with XLA (slower on CPU: XLA's convolutions are not oneDNN's).

    Returns
    -------
    :class:`Explanation`; ``diagnostics`` has ``setup_seconds`` (clone and trace),
    ``score_seconds``, ``first_call_seconds`` (graph optimisation and XLA compilation happen
    in the first call), ``prepared_reused`` (the step of an earlier call with the same model
    and settings was used: no setup and no compilation), ``sequences_per_call`` and
    ``summation_max_abs_error``.
    """
    import tensorflow as tf

    t0 = time.perf_counter()
    n, r, length, _ = refs.shape
    b = max(1, min(n, batch_size // (r + 1)))
    step, dtype, reused = _prepared(model, task_index, r, b, length, eps, band, fuse,
                                    jit_compile)
    t1 = time.perf_counter()
    hyp = np.empty((n, length, 4), dtype)
    logit = np.empty(n, dtype)
    logit_ref = np.empty((n, r), dtype)
    contrib_sum = np.empty((n, r), dtype)
    first_call = 0.0
    for s0, s1 in padded_batches(n, b):
        k = s1 - s0
        x = tf.constant(pad_rows(onehot[s0:s1], b), dtype)
        rr = tf.constant(pad_rows(refs[s0:s1], b).reshape(b * r, length, 4), dtype)
        h, lx, lr, cs = step(x, rr)
        hyp[s0:s1], logit[s0:s1] = h.numpy()[:k], lx.numpy()[:k]
        logit_ref[s0:s1], contrib_sum[s0:s1] = lr.numpy()[:k], cs.numpy()[:k]
        first_call = first_call or time.perf_counter() - t1
    out = Explanation(hyp, logit, logit_ref, contrib_sum, "deeplift")
    out.diagnostics.update(
        setup_seconds=t1 - t0, prepared_reused=reused, score_seconds=time.perf_counter() - t1,
        first_call_seconds=first_call, sequences_per_call=b,
        summation_max_abs_error=float(out.summation_errors().max()) if n else 0.0)
    return out


METHOD = register(Method(
    name="deeplift", run=run, exact=True, unsupported=unsupported,
    options={"eps": 1e-7, "band": None, "fuse": True, "jit_compile": False}, batch_size=1408,
    description="native TF2 DeepLIFT, Rescale rule (DeepSHAP); exact",
))
