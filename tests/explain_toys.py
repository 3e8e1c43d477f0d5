"""Tiny seeded models for the tests of peak2motif.explain (built with the workflow's builder)."""

from __future__ import annotations

import os

import numpy as np
from attribution_toys import toy_data
from peak2motif.config import with_defaults
from peak2motif.sequences import one_hot

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Two small conv blocks and a dense block: every code path of build_model at a tiny size.
SMALL = {
    "conv_blocks": [{"filters": 8, "kernel_size": 7, "pool_size": 2},
                    {"filters": 8, "kernel_size": 3, "pool_size": 2}],
    "dense_blocks": [{"units": 8}],
}


def small_cfg(**overrides) -> dict:
    """The ``model:`` section of a small model, schema defaults filled in."""
    return with_defaults("model", {**SMALL, **overrides})


def built(cfg: dict, length: int = 60, seed: int = 0, epochs: int = 3, n: int = 300,
          n_tasks: int = 1):
    """``build_model(cfg)`` trained ``epochs`` epochs on the toy GATA data (0: untrained)."""
    import keras
    from peak2motif.model import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(cfg, length, n_tasks, "binary" if n_tasks == 1 else "multitask",
                        seed=seed)
    if epochs:
        codes, labels, _ = toy_data(n, length, seed)
        labels = np.repeat(labels, n_tasks, axis=1)
        if n_tasks > 1:  # the second task: the first label of a shifted copy
            labels[:, 1:] = np.roll(labels[:, 1:], 1, axis=0)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
        model.fit(one_hot(codes), labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def bpnet_like(length: int = 200, filters: int = 16, n_dilated: int = 4, head: str = "gap",
               seed: int = 0):
    """A small BPNet-like functional model: a wide conv, dilated residual convs, a head.

    Conv1D(21, same, relu), then ``n_dilated`` Conv1D(3, dilation 2, 4, 8, ..., same, relu)
    each added to its input; ``gap`` (GlobalAveragePooling1D) or ``dense`` (AveragePooling1D
    10, Flatten, Dense 8 relu) head; Dense(1) logits and a sigmoid Activation.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((length, 4), name="onehot")
    x = keras.layers.Conv1D(filters, 21, padding="same", activation="relu")(inp)
    for i in range(1, n_dilated + 1):
        conv = keras.layers.Conv1D(filters, 3, padding="same", dilation_rate=2 ** i,
                                   activation="relu", name=f"dilated{i}")(x)
        x = keras.layers.Add(name=f"residual{i}")([x, conv])
    if head == "gap":
        x = keras.layers.GlobalAveragePooling1D()(x)
    else:
        x = keras.layers.Flatten()(keras.layers.AveragePooling1D(10)(x))
        x = keras.layers.Dense(8, activation="relu")(x)
    x = keras.layers.Dense(1, name="logits")(x)
    return keras.Model(inp, keras.layers.Activation("sigmoid", name="output")(x))


def float64_copy(model):
    """``model`` with every layer in float64 and the same weights (for round-off-free checks)."""
    import keras

    def clone(layer):
        cfg = layer.get_config()
        cfg["dtype"] = "float64"
        return type(layer).from_config(cfg)

    inp = keras.Input(model.inputs[0].shape[1:], dtype="float64")
    copy = keras.models.clone_model(model, input_tensors=inp, clone_function=clone)
    copy.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
    return copy


def random_codes(n: int, length: int, seed: int = 0) -> np.ndarray:
    """``(n, length)`` uint8 random A/C/G/T codes."""
    return np.random.default_rng(seed).integers(0, 4, (n, length)).astype(np.uint8)
