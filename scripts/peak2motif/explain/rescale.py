"""DeepLIFT's Rescale rule as a Keras 3 model rewrite (TensorFlow backend).

How a batch is laid out
-----------------------
One compiled call takes ``concat([x, refs])``: B sequences, then their B*R references,
reference j of sequence i at row ``B + i*R + j``. Linear layers (convolutions at any dilation
and padding, dense, batch normalisation in inference, average pooling, Add, Concatenate,
reshapes) are the model's own layer objects and act on every row. Each nonlinear layer is
replaced (:func:`rescale_clone`) by one that

- computes every row normally;
- gives the batch a custom gradient: zero on the sequence rows (they are off the gradient
  path) and, on each reference row, the pair's Rescale multiplier, with the sequence's values
  broadcast over its R references. Values and multipliers come from one XLA-fused kernel
  per layer (``fuse``).

The multiplier of a pair is symmetric in (x, r) and linear layers have the same Jacobian at
every point, so the gradient of the summed reference-row logits with respect to the
reference input is the DeepLIFT multiplier of every pair, chained through the network
(DeepLIFT's chain rule for multipliers). One pass costs about (1 + 1/R) forwards and one
backward per pair, where the textbook paired batch costs two of each.

Rules
-----
- Elementwise ``y = f(z)`` (every Keras activation, ``ReLU``, ``LeakyReLU``, ``ELU``,
  ``PReLU``): ``m = (f(z_x) - f(z_r)) / (z_x - z_r)``; where ``|z_x - z_r| < eps`` the
  derivative ``f'(z_r)`` taken by autodiff at the *input* reference (deeplift 0.6.13 takes it
  at the output reference, ``sigma'(sigma(z))``, which is wrong for all but ReLU). In float32,
  a smooth activation's secant is taken as its midpoint derivative where ``|z_x - z_r|`` is
  within a small ``band`` (:func:`_rescale_core`), where the quotient is mostly round-off.
- Max pooling (``MaxPooling1D`` any size, stride and padding; ``GlobalMaxPooling1D``): the
  rule of shap's DeepExplainer (``shap/explainers/_deep/deep_tf.py``, ``maxpool``). With
  ``c = max(out_x, out_r)``, ``c - out_r`` goes to x's argmax and ``out_x - c`` to r's
  argmax, divided by the input difference; the two parts add up to ``out_x - out_r``, so
  summation-to-delta stays exact. Where the input difference is below ``eps`` the multiplier
  is 1 on an element that is the argmax for both x and r and 0 elsewhere (the limit of the
  rule; shap uses 0, which changes no contribution but loses hypothetical ones).
- ``Conv1D`` / ``Dense`` with a built-in nonlinear activation become their linear part (same
  weights) followed by the elementwise rule.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from peak2motif.errors import InputError

# deeplift's NEAR_ZERO_THRESHOLD: below it the secant is round-off and the derivative is used.
EPS = 1e-7


def _layer_classes(*names: str) -> tuple[type, ...]:
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


# Layers that are linear (affine) maps of each row in inference: used unchanged.
LINEAR = _layer_classes(
    "InputLayer", "Conv1D", "Conv2D", "DepthwiseConv1D", "SeparableConv1D", "Conv1DTranspose",
    "Dense", "EinsumDense", "BatchNormalization", "Dropout", "SpatialDropout1D",
    "GaussianDropout", "GaussianNoise", "AlphaDropout", "Flatten", "Reshape", "Permute",
    "RepeatVector", "AveragePooling1D", "GlobalAveragePooling1D", "Add", "Subtract", "Average",
    "Concatenate", "ZeroPadding1D", "Cropping1D", "UpSampling1D", "Identity", "Rescaling",
)
ELEMENTWISE = _layer_classes("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU")
MAX_POOLING = _layer_classes("MaxPooling1D", "GlobalMaxPooling1D")
NOT_ELEMENTWISE = {"softmax", "log_softmax"}


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__).lower()


def _batch(z, n_refs: int):
    """B of a ``concat([x, refs])`` batch: static when the batch size is (in a traced step)."""
    rows = z.shape[0]
    return rows // (n_refs + 1) if rows is not None else tf.shape(z)[0] // (n_refs + 1)


def _split(z, n_refs: int):
    b = _batch(z, n_refs)
    return z[:b], z[b:], b


def _rows_of(z, lead: list):
    """The shape ``lead + z.shape[1:]``: Python ints where the row shape is static (fewer ops
    to trace and to compile than ``tf.shape``)."""
    rows = z.shape[1:]
    if rows.is_fully_defined():
        return lead + list(rows)
    return tf.concat([lead, tf.shape(z)[1:]], 0)


def _abs(t):
    """``|t|`` as ``max(t, -t)`` (the same values). XLA lowers TF's ``Abs`` through a
    per-op MLIR legalisation, whose set-up made up much of each fused kernel's compile time."""
    return tf.maximum(t, -t)


def _secant_exact(fn) -> bool:
    """Whether ``fn``'s float32 secant is exact wherever the band would replace it.

    ReLU (without a negative slope) has slope 0 or 1 on each side of its kink: between two
    points on the same side, ``(f(z_x) - f(z_r)) / (z_x - z_r)`` is exactly 0 or 1, the value
    the band would put there, and across the kink the band does not apply. Skipping the band
    for it leaves every multiplier as it is and saves compiling and running its passes.
    """
    if fn is keras.activations.relu:
        return True
    return isinstance(fn, keras.layers.ReLU) and not fn.negative_slope


def _derivative(fn, z):
    """``fn(z)`` and ``fn'(z)`` elementwise, by autodiff (right for every activation)."""
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = fn(z)
    return y, tape.gradient(y, z)


def _rescale_core(fn, n_refs: int, eps: float, band: float, fuse: bool):
    """``z -> (fn(z), multiplier)`` for a ``concat([x, refs])`` batch ``z``.

    The multiplier has zeros on the sequence rows (they are off the gradient path) and the
    Rescale multiplier of each pair on the reference rows: the secant
    ``(f(z_x) - f(z_r)) / (z_x - z_r)``, or ``f'(z_r)`` where ``|z_x - z_r| < eps``. In float32
    the secant's quotient loses ``ulp / |z_x - z_r|`` of its precision, so within a ``band``
    (``|z_x - z_r| < band * (1 + max |z|)``) where ``f'`` barely changes (smooth activations;
    not across a ReLU kink) the secant is taken as ``f'`` at the midpoint, whose error is
    ``f3 dz^2 / 24`` (f3 the third derivative); summation-to-delta then holds to
    ``f3 dz^3 / 24``. About ten elementwise passes, which XLA fuses into one kernel reading
    ``z`` once when ``fuse`` (2-3x faster on CPU).
    """

    band = 0.0 if _secant_exact(fn) else band

    def core(z):
        y, slope = _derivative(fn, z)  # one call for the sequences and the references
        b, pairs = _batch(z, n_refs), _rows_of(z, [-1, n_refs])
        # the sequence (b, 1, ...) broadcast over its references (b, R, ...)
        zx, yx, sx = (tf.expand_dims(t[:b], 1) for t in (z, y, slope))
        zr, yr, sr = (tf.reshape(t[b:], pairs) for t in (z, y, slope))
        dz = zx - zr
        small = _abs(dz) < eps
        secant = (yx - yr) / tf.where(small, tf.constant(1, dz.dtype), dz)  # no batch-size 1s
        multiplier = tf.where(small, sr, secant)
        if band:
            near = _abs(dz) < band * (1 + tf.maximum(_abs(zx), _abs(zr)))
            smooth = _abs(sx - sr) <= 0.5 * tf.maximum(_abs(sx), _abs(sr))
            middle = _derivative(fn, (zx + zr) / 2)[1]
            multiplier = tf.where(near & smooth & ~small, middle, multiplier)
        # zeros on the sequence rows by padding: a zeros_like of their static shape was folded
        # into a constant that large, copied during compilation
        pad = [[b, 0]] + [[0, 0]] * (z.shape.rank - 1)
        m = tf.pad(tf.reshape(multiplier, _rows_of(z, [-1])), pad)
        return y, m

    # autograph=False: no Python control flow on tensors here, and it only costs trace time
    return tf.function(core, jit_compile=True, autograph=False) if fuse else core


def rescale_elementwise(z, fn, n_refs: int, eps: float = EPS, band: float = 0.0,
                        fuse: bool = True):
    """Apply elementwise ``fn`` to a batch laid out as ``concat([x, refs])`` (module doc).

    Parameters
    ----------
    z
        ``(B + B*R, ...)`` pre-activations.
    fn
        Elementwise callable (a Keras activation or an activation layer).
    n_refs
        R.
    eps
        Below this ``|z_x - z_r|`` the multiplier is ``fn'(z_r)``.
    band
        Relative width within which a smooth ``fn``'s secant is its midpoint derivative
        (0: never; see :func:`_rescale_core`).
    fuse
        Compute the values and multipliers in one XLA-fused kernel.

    Returns
    -------
    ``fn(z)``, whose gradient is the Rescale multiplier on the reference rows and zero on the
    sequence rows.
    """
    core = _rescale_core(fn, n_refs, eps, band, fuse)

    @tf.custom_gradient
    def apply(z):
        y, multiplier = core(z)

        def grad(g, variables=None):
            # Layer weights (PReLU's alpha) are constants here: no gradient for them.
            if variables:
                return g * multiplier, [tf.zeros_like(v) for v in variables]
            return g * multiplier

        return y, grad

    return apply(z)


def _route(pool, a, g):
    """The gradient of ``pool`` at ``a`` applied to ``g``: ``g`` sent to each argmax."""
    with tf.GradientTape() as tape:
        tape.watch(a)
        out = pool(a)
    return tape.gradient(out, a, output_gradients=g)


def rescale_max(z, pool, n_refs: int, eps: float = EPS):
    """Apply a max-pooling ``pool`` to ``concat([x, refs])`` with shap's max-pool rule.

    Shapes as in :func:`rescale_elementwise`; ``pool`` is the Keras pooling layer.
    """
    zx, zr, _ = _split(z, n_refs)
    yx = pool(zx)
    zx_rep = tf.repeat(tf.stop_gradient(zx), n_refs, axis=0)
    yx_rep = tf.repeat(tf.stop_gradient(yx), n_refs, axis=0)

    @tf.custom_gradient
    def reference_rows(zr):
        yr = pool(zr)

        def grad(g):
            cross = tf.maximum(yx_rep, yr)
            to_x = _route(pool, zx_rep, g * (cross - yr))
            to_r = _route(pool, zr, g * (yx_rep - cross))
            dz = zx_rep - zr
            small = tf.abs(dz) < eps
            argmax_of_x = tf.cast(_route(pool, zx_rep, tf.ones_like(g)) > 0, g.dtype)
            at_both = _route(pool, zr, g) * argmax_of_x
            return tf.where(small, at_both,
                            (to_x + to_r) / tf.where(small, tf.ones_like(dz), dz))

        return yr, grad

    return tf.concat([yx, reference_rows(zr)], 0)


class RescaleActivation(keras.layers.Layer):
    """An elementwise nonlinearity under the Rescale rule (:func:`rescale_elementwise`)."""

    def __init__(self, fn, n_refs: int, eps: float = EPS, band: float = 0.0,
                 fuse: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.fn, self.n_refs, self.eps, self.band, self.fuse = fn, n_refs, eps, band, fuse

    def call(self, z):
        return rescale_elementwise(z, self.fn, self.n_refs, self.eps, self.band, self.fuse)

    def compute_output_shape(self, input_shape):
        return input_shape


class RescaleMaxPooling(keras.layers.Layer):
    """A max-pooling layer under shap's max-pool rule (:func:`rescale_max`)."""

    def __init__(self, pool, n_refs: int, eps: float = EPS, **kwargs):
        super().__init__(**kwargs)
        self.pool, self.n_refs, self.eps = pool, n_refs, eps

    def call(self, z):
        return rescale_max(z, self.pool, self.n_refs, self.eps)

    def compute_output_shape(self, input_shape):
        return self.pool.compute_output_shape(input_shape)


class LinearThenRescale(keras.layers.Layer):
    """A Conv/Dense layer with a built-in nonlinear activation, split in two.

    The linear part is a copy of the layer with ``activation='linear'`` and the same weights;
    the activation follows under the Rescale rule.
    """

    def __init__(self, source, n_refs: int, eps: float = EPS, band: float = 0.0,
                 fuse: bool = True, **kwargs):
        super().__init__(**kwargs)
        cfg = source.get_config()
        cfg.update(activation="linear", name=f"{source.name}_linear")
        self.linear = type(source).from_config(cfg)
        self.source, self.fn = source, source.activation
        self.n_refs, self.eps, self.band, self.fuse = n_refs, eps, band, fuse

    def build(self, input_shape):
        self.linear.build(input_shape)
        self.linear.set_weights(self.source.get_weights())

    def call(self, z):
        return rescale_elementwise(self.linear(z), self.fn, self.n_refs, self.eps, self.band,
                                   self.fuse)

    def compute_output_shape(self, input_shape):
        return self.source.compute_output_shape(input_shape)


def replacement(layer, n_refs: int, eps: float = EPS, band: float = 0.0, fuse: bool = True):
    """The layer to use for ``layer`` in the Rescale clone (``layer`` itself when linear).

    Raises
    ------
    InputError
        For a layer with no rule here (LSTM, attention, LayerNormalization, Multiply, ...).
    """
    # The source's dtype policy: a replacement must not cast (a float64 model stays float64).
    kw = {"name": f"{layer.name}_rescale", "dtype": layer.dtype_policy}
    act = getattr(layer, "activation", None)
    if isinstance(layer, keras.layers.Activation):
        if _activation_name(act) in NOT_ELEMENTWISE:
            raise InputError(f"layer {layer.name} applies {_activation_name(act)} inside the "
                             "model, which is not elementwise and has no DeepLIFT rule here",
                             key="attribution: method", fix="use integrated_gradients")
        return RescaleActivation(act, n_refs, eps, band, fuse, **kw)
    if isinstance(layer, ELEMENTWISE):
        return RescaleActivation(layer, n_refs, eps, band, fuse, **kw)
    if isinstance(layer, MAX_POOLING):
        return RescaleMaxPooling(layer, n_refs, eps, **kw)
    if isinstance(layer, LINEAR):
        if act is None or _activation_name(act) == "linear":
            return layer
        if _activation_name(act) in NOT_ELEMENTWISE:
            raise InputError(f"layer {layer.name} has a built-in {_activation_name(act)} "
                             "activation inside the model, which has no DeepLIFT rule here",
                             key="attribution: method", fix="use integrated_gradients")
        return LinearThenRescale(layer, n_refs, eps, band, fuse, **kw)
    raise InputError(
        f"layer {layer.name} ({type(layer).__name__}) has no DeepLIFT rule here",
        key="attribution: method",
        fix="use integrated_gradients (method auto picks it for cnn_lstm and cnn_attention), "
            "or build the model from Conv1D, Dense, BatchNormalization, pooling, Dropout, "
            "Flatten, Add/Concatenate and Activation layers",
    )


def rescale_clone(logits_model, n_refs: int, eps: float = EPS, band: float = 0.0,
                  fuse: bool = True):
    """A copy of ``logits_model`` that shares its weights and applies the Rescale rule.

    Parameters
    ----------
    logits_model
        Keras model giving logits (:func:`peak2motif.explain.keras_tools.logit_model`).
    n_refs
        R, the references per sequence in every batch it is called on.
    eps, band, fuse
        See :func:`rescale_elementwise`.

    Returns
    -------
    A functional model of the same input and output shapes, to be called on
    ``concat([x (B rows), refs (B*R rows)])`` with ``training=False``.
    """
    return keras.models.clone_model(
        logits_model, clone_function=lambda layer: replacement(layer, n_refs, eps, band, fuse),
        recursive=True)


def _all_layers(model):
    """The layers of ``model``, those of nested models included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def refresh_weights(clone) -> None:
    """Copy the source layers' current weights into the clone's split Conv/Dense layers.

    Every other layer of a :func:`rescale_clone` is the model's own object, so it follows a
    change of the model's weights (training after a first explanation) by itself.
    """
    for layer in _all_layers(clone):
        if isinstance(layer, LinearThenRescale) and layer.built:
            layer.linear.set_weights(layer.source.get_weights())


def deeplift_step(clone, n_refs: int, task_index: int, batch: int, length: int,
                  jit_compile: bool = False):
    """One compiled DeepLIFT call over ``batch`` sequences and their ``batch*n_refs`` refs.

    Returns
    -------
    ``step(x (B, L, 4), refs (B*R, L, 4)) -> (hypothetical (B, L, 4), logit (B,),
    logit_ref (B, R), contrib_sum (B, R))``, a ``tf.function`` with a fixed signature.
    """
    import tensorflow.experimental.numpy as tnp

    from peak2motif.explain.core import contribution_sums, hypothetical_contributions

    dtype = tf.as_dtype(clone.inputs[0].dtype)  # float32, or float64 for accuracy checks
    spec = [tf.TensorSpec((batch, length, 4), dtype),
            tf.TensorSpec((batch * n_refs, length, 4), dtype)]

    @tf.function(input_signature=spec, jit_compile=jit_compile, autograph=False)
    def step(x, refs):
        # only the references are watched: no gradients of the weights are traced
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(refs)
            logits = clone(tf.concat([x, refs], 0), training=False)[:, task_index]
            logit_ref = logits[batch:]
            total = tf.reduce_sum(logit_ref)
        multipliers = tape.gradient(total, refs)
        m = tf.reshape(multipliers, (batch, n_refs, length, 4))
        r = tf.reshape(refs, (batch, n_refs, length, 4))
        return (hypothetical_contributions(m, r, xp=tnp), logits[:batch],
                tf.reshape(logit_ref, (batch, n_refs)), contribution_sums(m, x, r, xp=tnp))

    return step
