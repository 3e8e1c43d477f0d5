"""Keras helpers shared by the methods: the logit sub-model and padded batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from peak2motif.errors import InputError


def logit_model(model):
    """The sub-model of ``model`` that outputs its logits ``(batch, T)`` (for a softmax
    output, the logits minus their mean over the classes: see :func:`_centred`).

    The contract (:func:`peak2motif.model.build_model`) is that the last layer is a separate
    ``Activation`` (named ``output``) after the ``logits`` layer; the logits are that layer's
    input. A model whose last layer has a linear activation is its own logit model.

    Raises
    ------
    InputError
        When the last layer has a built-in nonlinear activation (the logits are not exposed).
    """
    import keras

    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation):
        # The input of the last layer, not layers[-2].output: in a functional model the
        # layer before it in model.layers need not feed it.
        logits = last.input
        if softmax_output(model):
            logits = _centred(logits)
        return keras.Model(model.inputs, logits, name=f"{model.name}_logits")
    act = getattr(last, "activation", None)
    if act is None or getattr(act, "__name__", "") == "linear":
        return model
    raise InputError(
        f"the last layer ({last.name}) has a built-in {act.__name__} activation, so the logits "
        "cannot be read", key="model",
        fix="end the model with a separate keras.layers.Activation layer (build_model does)",
    )


def softmax_output(model) -> bool:
    """Whether the model ends in a softmax ``Activation`` (its logits are explained centred)."""
    import keras

    last = model.layers[-1]
    return (isinstance(last, keras.layers.Activation)
            and getattr(last.activation, "__name__", "") == "softmax")


def _centred(logits):
    """``logits - mean(logits)`` over the classes, as a fixed linear Dense layer.

    Softmax is unchanged by adding a constant to every logit, so a raw class logit carries a
    part shared by all classes that says nothing about that class; its contributions then mix
    the evidence for every class. DeepLIFT's authors normalise softmax logits by subtracting
    their mean (Shrikumar et al. 2017, section 3.6); a Dense layer is linear, so every method
    (and shap) explains it exactly.
    """
    import keras

    k = int(logits.shape[-1])
    # in the logits' own dtype: a float32 layer would round a float64 copy's logits
    dtype = keras.backend.standardize_dtype(logits.dtype)
    layer = keras.layers.Dense(k, use_bias=False, trainable=False, name="centred_logits",
                               dtype=dtype)
    out = layer(logits)
    layer.set_weights([(np.eye(k) - np.full((k, k), 1.0 / k)).astype(dtype)])
    return out


def task_model(logits_model, task_index: int):
    """A model of one logit column ``(batch, 1)``, for shap DeepExplainer.

    A Keras 3 slice of a tensor is an operation, not a layer, so a model ending in one would
    end in the last *layer* (all T logits): shap then loops over T outputs and indexes
    ``out[:, i]`` of a ``(batch, 1)`` tensor out of bounds. The column is taken inside a small
    layer instead.
    """
    import keras

    class Column(keras.layers.Layer):
        def __init__(self, index: int, **kwargs):
            super().__init__(**kwargs)
            self.index = index

        def call(self, x):
            return x[:, self.index : self.index + 1]

    return keras.Model(logits_model.inputs, Column(task_index)(logits_model.outputs[0]))


def check_task(logits_model, task_index: int) -> int:
    """``task_index`` if it is a column of the logits, else an :class:`InputError`."""
    n_out = int(logits_model.outputs[0].shape[-1])
    if not 0 <= task_index < n_out:
        raise InputError(f"task index {task_index} is out of range for a model with {n_out} "
                         "outputs", key="attribution: task",
                         fix=f"give a task between 0 and {n_out - 1}")
    return task_index


def padded_batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive batches of ``size`` rows over ``n`` rows."""
    for start in range(0, n, size):
        yield start, min(n, start + size)


def pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` with its first axis padded to ``rows`` by repeating its last row.

    The compiled steps have a fixed input signature (one trace per run); the last batch is
    padded with a real row rather than zeros, so no padded row can overflow or divide by 0.
    """
    if len(a) == rows:
        return a
    return np.concatenate([a, np.repeat(a[-1:], rows - len(a), axis=0)])
