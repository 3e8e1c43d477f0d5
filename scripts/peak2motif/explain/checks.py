"""Independent checks of a method's hypothetical contributions, for a sample of each run.

The hypothetical contributions of the three unobserved bases at each position are what
TF-MoDISco clusters on, and summation-to-delta never sees them (``hypothetical * onehot``
keeps only the observed base). :func:`independent_hypothetical_check` recomputes them for
the same model and sample with a second, independent implementation:

- DeepLIFT (``deeplift``, ``deeplift_package``): shap's DeepExplainer (its own rules on its
  own graph rewrite) with a **uniform** reference. Its per-channel values are
  ``phi_c = m_c (x_c - 0.25)``, and ``x_c - 0.25`` is -0.25 or 0.75, never 0, so the
  multiplier ``m_c`` of every channel is recoverable (:func:`shap_multipliers`); the shared
  projection turns them into hypothetical contributions for that reference. For models shap
  cannot explain (GlobalMaxPooling1D, dilated convolutions, gelu) the second implementation
  is :func:`deeplift_simple`, an eager node-by-node float64 DeepLIFT that shares none of the
  compiled method's batch layout, model rewrite or custom gradients.
- Integrated gradients: :func:`peak2motif.explain.integrated_gradients.simple`, an eager loop
  over the quadrature nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from peak2motif.explain.core import explain, get_method, hypothetical_contributions
from peak2motif.explain.keras_tools import check_task, logit_model, task_model

# Activations whose TF ops shap 0.51's DeepExplainer has a handler for (deep_tf.py).
SHAP_ACTIVATIONS = {"relu", "elu", "selu", "sigmoid", "tanh", "softplus", "exponential",
                    "linear"}


@dataclass
class HypotheticalCheck:
    """Result of :func:`independent_hypothetical_check`.

    Attributes
    ----------
    max_abs_diff
        Largest |hypothetical(method) - hypothetical(second implementation)| over the
        sample's positions and all four bases.
    scale
        Largest |hypothetical| of the second implementation (to read the difference against).
    against
        The second implementation: ``shap``, ``deeplift_simple`` or ``ig_simple``.
    """

    max_abs_diff: float
    scale: float
    against: str

    @property
    def relative(self) -> float:
        """``max_abs_diff / scale`` (inf when the scale is 0 and the difference is not)."""
        if self.scale == 0:
            return 0.0 if self.max_abs_diff == 0 else float("inf")
        return self.max_abs_diff / self.scale


def uniform_references(n: int, length: int) -> np.ndarray:
    """``(n, 1, L, 4)`` float32 view of one reference of 0.25 everywhere."""
    return np.broadcast_to(np.float32(0.25), (n, 1, length, 4))


def _activation_names(model) -> set[str]:
    names = set()
    for layer in model.layers:
        act = getattr(layer, "activation", None)
        if act is not None:
            names.add(getattr(act, "__name__", type(act).__name__).lower())
    return names


def shap_can_explain(model) -> bool:
    """Whether shap 0.51's DeepExplainer has a rule for every layer of ``model``'s logits.

    It fails on GlobalMaxPooling1D (FACTS.md) and on dilated convolutions (TF runs them through
    ``BatchToSpaceND``, which it has no rule for), has no rule for gelu's ``Erf``, and none for
    recurrent or attention layers. It is asked in advance because a failed DeepExplainer
    leaves its gradient overrides registered and breaks later gradients in the process.
    """
    import keras

    lm = logit_model(model)
    refused = (keras.layers.GlobalMaxPooling1D, keras.layers.LSTM, keras.layers.GRU,
               keras.layers.Bidirectional, keras.layers.MultiHeadAttention,
               keras.layers.LayerNormalization)
    if any(isinstance(layer, refused) for layer in lm.layers):
        return False
    if any(max(getattr(layer, "dilation_rate", (1,))) > 1 for layer in lm.layers):
        return False
    return _activation_names(lm) <= SHAP_ACTIVATIONS


def shap_multipliers(model, onehot: np.ndarray, task_index: int = 0) -> np.ndarray:
    """DeepLIFT (Rescale) multipliers of every channel from shap, uniform reference.

    Parameters
    ----------
    onehot
        ``(n, L, 4)`` one-hot (N rows all zero).

    Returns
    -------
    ``(n, L, 4)`` float64: ``phi / (x - 0.25)`` with shap's per-channel values ``phi``.
    """
    import shap

    lm = logit_model(model)
    check_task(lm, task_index)
    one = task_model(lm, task_index)
    background = np.full((1,) + onehot.shape[1:], 0.25, np.float32)
    explainer = shap.DeepExplainer(one, background)
    phi = np.asarray(explainer.shap_values(onehot.astype(np.float32), check_additivity=False),
                     dtype=np.float64).reshape(onehot.shape)
    return phi / (onehot.astype(np.float64) - 0.25)


def deeplift_simple(model, onehot: np.ndarray, refs: np.ndarray, task_index: int = 0,
                    eps: float = 1e-7) -> np.ndarray:
    """DeepLIFT (Rescale) hypothetical contributions, computed the plain way, in float64.

    A deliberately simple second implementation: both members of each pair go through the
    logit model's layers one node at a time in eager mode (float64 copies of the layers), then
    the multipliers go back through the nodes one at a time, summed where a tensor feeds
    several layers (residuals): a linear layer's by its vector-Jacobian product (a plain
    ``GradientTape``), an elementwise nonlinearity's times the secant (``f'(z_r)`` below
    ``eps``), a max pooling's by shap's rule. No model rewrite, no shared batch, no custom
    gradient. It walks the Keras functional graph (``_nodes_by_depth``, Keras 3.15) and is
    meant for a sample of a few sequences.

    Parameters
    ----------
    model
        Keras model (its logits are explained).
    onehot
        ``(N, L, 4)``.
    refs
        ``(N, R, L, 4)``.

    Returns
    -------
    ``(N, L, 4)`` float64 hypothetical contributions (mean over references).
    """
    import tensorflow as tf

    lm = logit_model(model)
    check_task(lm, task_index)
    n, r, length, _ = refs.shape
    x = tf.constant(np.repeat(onehot, r, axis=0), tf.float64)
    ref = tf.constant(np.asarray(refs).reshape(n * r, length, 4), tf.float64)
    values = {id(lm.inputs[0]): (x, ref)}  # tensor key -> (value for x, value for ref)
    steps = []  # (layer, input keys, output key), inputs first
    keep = []  # the fresh key objects of split layers, alive so that their ids stay unique
    for depth in sorted(lm._nodes_by_depth, reverse=True):
        for node in lm._nodes_by_depth[depth]:
            if node.is_input:
                continue
            in_keys = [id(t) for t in node.input_tensors]
            for layer, ins, out in _float64_steps(node.operation, in_keys, id(node.outputs[0]),
                                                  values[in_keys[0]][0], keep):
                values[out] = (_call(layer, [values[k][0] for k in ins]),
                               _call(layer, [values[k][1] for k in ins]))
                steps.append((layer, ins, out))
    out_key = id(lm.outputs[0])
    seed = np.zeros(values[out_key][0].shape)
    seed[:, task_index] = 1.0
    mult = {out_key: tf.constant(seed)}
    for layer, ins, out in reversed(steps):
        m = mult.pop(out, None)
        if m is None:
            continue
        zx, zr = [values[k][0] for k in ins], [values[k][1] for k in ins]
        for k, m_in in zip(ins, _back(layer, zx, zr, *values[out], m, eps), strict=True):
            mult[k] = mult[k] + m_in if k in mult else m_in
    m = mult[id(lm.inputs[0])].numpy().reshape(n, r, length, 4)
    return hypothetical_contributions(m, np.asarray(refs, np.float64).reshape(m.shape))


def _call(layer, inputs):
    return layer(inputs[0] if len(inputs) == 1 else inputs, training=False)


def _float64_steps(layer, in_keys, out_key, first_input, keep) -> list:
    """One node as float64 copies of its layer with the same weights (so round-off is not part
    of the comparison); a layer with a built-in nonlinear activation becomes its linear part
    and an ``Activation``, joined by a fresh key."""
    import keras

    cfg = layer.get_config()
    cfg["dtype"] = "float64"
    split = "activation" in cfg and getattr(layer.activation, "__name__", "") != "linear"
    if split:
        cfg["activation"] = "linear"
    copy = type(layer).from_config(cfg)
    n_inputs = len(in_keys)
    copy(first_input if n_inputs == 1 else [first_input] * n_inputs)  # builds it
    copy.set_weights([np.asarray(w, np.float64) for w in layer.get_weights()])
    if not split:
        return [(copy, in_keys, out_key)]
    keep.append(mid := object())
    return [(copy, in_keys, id(mid)),
            (keras.layers.Activation(layer.activation, dtype="float64"), [id(mid)], out_key)]


def _back(layer, zx, zr, yx, yr, m, eps) -> list:
    """Multipliers at the inputs of ``layer`` from those at its output (one pair per row)."""
    import keras
    import tensorflow as tf

    elementwise = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
                   keras.layers.ELU, keras.layers.PReLU)
    pools = (keras.layers.MaxPooling1D, keras.layers.GlobalMaxPooling1D)
    if isinstance(layer, elementwise):
        zx, zr = zx[0], zr[0]
        with tf.GradientTape() as tape:
            tape.watch(zr)
            out = layer(zr)
        slope = tape.gradient(out, zr)
        dz = zx - zr
        small = tf.abs(dz) < eps
        return [m * tf.where(small, slope, (yx - yr) / tf.where(small, tf.ones_like(dz), dz))]
    if isinstance(layer, pools):
        zx, zr = zx[0], zr[0]

        def route(a, g):
            with tf.GradientTape() as tape:
                tape.watch(a)
                out = layer(a)
            return tape.gradient(out, a, output_gradients=g)

        cross = tf.maximum(yx, yr)
        numerator = route(zx, m * (cross - yr)) + route(zr, m * (yx - cross))
        dz = zx - zr
        small = tf.abs(dz) < eps
        both = route(zr, m) * tf.cast(route(zx, tf.ones_like(m)) > 0, m.dtype)
        return [tf.where(small, both, numerator / tf.where(small, tf.ones_like(dz), dz))]
    with tf.GradientTape() as tape:
        for z in zr:
            tape.watch(z)
        out = layer(zr[0] if len(zr) == 1 else zr, training=False)
    return tape.gradient(out, zr, output_gradients=m)


def independent_hypothetical_check(model, onehot_sample: np.ndarray, method: str = "deeplift",
                                   task_index: int = 0, against: str = "deeplift_simple",
                                   **options) -> HypotheticalCheck:
    """Compare a method's hypothetical contributions with an independent implementation.

    Both run on ``onehot_sample`` with one uniform reference (0.25 per base), where every
    channel's multiplier is observable (module doc). The method runs through
    :func:`peak2motif.explain.explain` with ``options``.

    Parameters
    ----------
    model
        The Keras model (logits explained).
    onehot_sample
        ``(n, L, 4)`` a few sequences of the run (16 take seconds).
    method
        A key of :data:`peak2motif.explain.METHODS` (``deeplift_package`` runs in its
        Rescale mode here, the rule its second implementations share).

    against
        The second implementation of DeepLIFT methods: ``deeplift_simple`` (float64, the
        default) or ``shap`` (float32: its own rounding reaches 5e-4 of the largest value on
        trained exponential first layers, where native DeepLIFT is within 2e-6 of float64).

    Returns
    -------
    :class:`HypotheticalCheck`.
    """
    from peak2motif.explain import integrated_gradients as ig

    get_method(method)
    if method == "deeplift_package":
        # shap and deeplift_simple implement Rescale; GenomicsDefault's RevealCancel is
        # another rule, so the package's plumbing is checked in its Rescale mode.
        options = {**options, "mode": "Rescale"}
    onehot_sample = np.asarray(onehot_sample, np.float32)
    refs = uniform_references(len(onehot_sample), onehot_sample.shape[1])
    hyp = explain(model, onehot_sample, refs, method=method, task_index=task_index,
                  **options).hypothetical
    if method == "integrated_gradients":
        kept = {k: v for k, v in options.items() if k in ("steps", "rule")}
        second = ig.simple(model, onehot_sample, refs, task_index=task_index, **kept)
        other, against = second.hypothetical.astype(np.float64), "ig_simple"
    elif against == "shap" and shap_can_explain(model):
        mult = shap_multipliers(model, onehot_sample, task_index)
        other = hypothetical_contributions(mult[:, None], np.asarray(refs, np.float64))
        against = "shap"
    else:
        # float64: its own rounding (about 1e-15) does not blur the comparison, where shap's
        # float32 secants are off by up to 5e-4 (relative) on exponential first layers
        other = deeplift_simple(model, onehot_sample, refs, task_index)
        against = "deeplift_simple"
    return HypotheticalCheck(max_abs_diff=float(np.abs(hyp - other).max()),
                             scale=float(np.abs(other).max()), against=against)
