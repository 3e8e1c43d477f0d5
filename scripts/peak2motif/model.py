"""Build the Keras network from the ``model`` section of the config.

The default architecture (``cnn``) is a ``keras.Sequential`` model that deeplift's converter
accepts (see the attribution stage)::

    Input (L, 4)
    [Conv1D(padding="valid") -> BatchNormalization? -> Activation -> Pooling -> Dropout] x blocks
    Flatten
    [Dense -> BatchNormalization? -> Activation -> Dropout] x dense blocks
    Dense(T, name="logits")            # layer -2: logits (or linear outputs)
    Activation(output, name="output")  # layer -1: sigmoid / softmax / linear / softplus

Activations are always separate ``Activation`` layers, so BatchNormalization sits between the
convolution and its nonlinearity, and the output nonlinearity can be stripped for DeepLIFT
(``target_layer_idx=-2``).

``cnn_lstm`` adds a (bidirectional) LSTM after the conv blocks and stays Sequential.
``cnn_attention`` adds a residual multi-head self-attention block (a functional model). The
trunks are builders in :data:`TRUNKS`; integrated gradients explains the recurrent and
attention trunks, native DeepLIFT every ``cnn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

TASK_TYPES = ("binary", "multitask", "multiclass", "regression")
OUTPUT_ACTIVATION = {
    "binary": "sigmoid",
    "multitask": "sigmoid",
    "multiclass": "softmax",
    "regression": "linear",
}
LOSS = {
    "binary": "binary_crossentropy",
    "multitask": "binary_crossentropy",
    "multiclass": "categorical_crossentropy",
    "regression": "mse",
}
POOLING = {"average": keras.layers.AveragePooling1D, "max": keras.layers.MaxPooling1D}


def output_activation(model_cfg: Mapping, task_type: str) -> str:
    """The output nonlinearity: the configured one, or the task type's default."""
    act = model_cfg["output_activation"]
    return OUTPUT_ACTIVATION[task_type] if act == "auto" else act


def loss_name(training_cfg: Mapping, task_type: str) -> str:
    """The loss: the configured one, or the task type's default."""
    loss = training_cfg["loss"]
    return LOSS[task_type] if loss == "auto" else loss


def _regularizer(cfg: Mapping):
    kind = cfg["kind"]
    if kind == "none":
        return None
    if kind == "l1":
        return keras.regularizers.L1(cfg["l1"])
    if kind == "l2":
        return keras.regularizers.L2(cfg["l2"])
    return keras.regularizers.L1L2(l1=cfg["l1"], l2=cfg["l2"])


def _initializer(name: str, seed: int):
    """A seeded initializer instance (a name alone would draw from the global seed)."""
    init = keras.initializers.get(name)
    if hasattr(init, "seed"):
        init = init.__class__.from_config({**init.get_config(), "seed": seed})
    return init


def hidden_layers(model_cfg: Mapping, seed: int = 0) -> list[keras.layers.Layer]:
    """The conv and dense blocks up to (not including) Flatten, in order."""
    reg = _regularizer(model_cfg["regularizer"])
    layers: list[keras.layers.Layer] = []
    for i, block in enumerate(model_cfg["conv_blocks"]):
        layers.append(
            keras.layers.Conv1D(
                block["filters"], block["kernel_size"], dilation_rate=block["dilation"],
                padding="valid", kernel_initializer=_initializer(model_cfg["kernel_initializer"],
                                                                 seed + i),
                kernel_regularizer=reg, name=f"conv{i + 1}",
            )
        )
        if model_cfg["batch_norm"]:
            layers.append(keras.layers.BatchNormalization(name=f"conv{i + 1}_bn"))
        act = model_cfg["first_activation"] if i == 0 else model_cfg["activation"]
        layers.append(keras.layers.Activation(act, name=f"conv{i + 1}_act"))
        if block["pool_size"] > 1:
            layers.append(POOLING[block["pool_type"]](block["pool_size"], name=f"conv{i + 1}_pool"))
        if block["dropout"] > 0:
            layers.append(keras.layers.Dropout(block["dropout"], seed=seed + 100 + i,
                                               name=f"conv{i + 1}_dropout"))
    return layers


def _dense_layers(model_cfg: Mapping, seed: int) -> list[keras.layers.Layer]:
    reg = _regularizer(model_cfg["regularizer"])
    layers: list[keras.layers.Layer] = []
    for i, block in enumerate(model_cfg["dense_blocks"]):
        layers.append(keras.layers.Dense(
            block["units"], kernel_initializer=_initializer(model_cfg["kernel_initializer"],
                                                            seed + 200 + i),
            kernel_regularizer=reg, name=f"dense{i + 1}",
        ))
        if model_cfg["batch_norm"]:
            layers.append(keras.layers.BatchNormalization(name=f"dense{i + 1}_bn"))
        layers.append(keras.layers.Activation(model_cfg["activation"], name=f"dense{i + 1}_act"))
        if block["dropout"] > 0:
            layers.append(keras.layers.Dropout(block["dropout"], seed=seed + 300 + i,
                                               name=f"dense{i + 1}_dropout"))
    return layers


def _output_layers(model_cfg: Mapping, n_tasks: int, task_type: str, seed: int) -> list:
    return [
        keras.layers.Dense(
            n_tasks, kernel_initializer=_initializer(model_cfg["kernel_initializer"], seed + 400),
            kernel_regularizer=_regularizer(model_cfg["regularizer"]), name="logits",
        ),
        # float32 so that mixed precision never rounds the outputs.
        keras.layers.Activation(output_activation(model_cfg, task_type), dtype="float32",
                                name="output"),
    ]


def _collapse(model_cfg: Mapping) -> keras.layers.Layer:
    """Flatten (position-aware) or global pooling (position-invariant) before the dense blocks."""
    kind = model_cfg["global_pooling"]
    if kind == "average":
        return keras.layers.GlobalAveragePooling1D(name="global_pool")
    if kind == "max":
        return keras.layers.GlobalMaxPooling1D(name="global_pool")
    return keras.layers.Flatten(name="flatten")


def _cnn(inputs, hidden, dense, head, model_cfg, seed) -> keras.Model:
    """Conv blocks, Flatten (or global pooling), dense blocks, head: Sequential."""
    return keras.Sequential([inputs, *hidden, _collapse(model_cfg), *dense, *head],
                            name="peak2motif_cnn")


def _cnn_lstm(inputs, hidden, dense, head, model_cfg, seed) -> keras.Model:
    """Conv blocks, then a (bidirectional) LSTM instead of the collapse: Sequential."""
    rec = model_cfg["recurrent"]
    lstm = keras.layers.LSTM(rec["units"], seed=seed + 500, name="lstm")
    if rec["bidirectional"]:
        lstm = keras.layers.Bidirectional(lstm, name="bilstm")
    return keras.Sequential([inputs, *hidden, lstm, *dense, *head], name="peak2motif_cnn_lstm")


def _cnn_attention(inputs, hidden, dense, head, model_cfg, seed) -> keras.Model:
    """Conv blocks, a residual multi-head self-attention block, then as ``cnn``. Keras has no
    Sequential form of self-attention, so it is a functional model."""
    att = model_cfg["attention"]
    x = inputs
    for layer in hidden:
        x = layer(x)
    attended = keras.layers.MultiHeadAttention(
        att["heads"], att["key_dim"], dropout=att["dropout"], seed=seed + 600,
        name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="attention_norm")(
        keras.layers.Add(name="attention_residual")([x, attended]))
    x = _collapse(model_cfg)(x)
    for layer in dense + head:
        x = layer(x)
    return keras.Model(inputs, x, name="peak2motif_cnn_attention")


def _cnn_residual(inputs, hidden, dense, head, model_cfg, seed) -> keras.Model:
    """BPNet-like: the first conv block (the others are not used), then dilated
    convolutions (dilation 2, 4, 8, ..., padding same) each added back to its input, then the
    collapse, dense blocks and head.
    A functional model (the residual Adds)."""
    res = model_cfg["residual"]
    x = inputs
    for layer in hidden_layers({**model_cfg, "conv_blocks": model_cfg["conv_blocks"][:1]}, seed):
        x = layer(x)
    width = model_cfg["conv_blocks"][0]["filters"]
    for i in range(res["layers"]):
        y = keras.layers.Conv1D(
            width, res["kernel_size"], dilation_rate=2 ** (i + 1), padding="same",
            kernel_initializer=_initializer(model_cfg["kernel_initializer"], seed + 700 + i),
            kernel_regularizer=_regularizer(model_cfg["regularizer"]), name=f"res{i + 1}")(x)
        y = keras.layers.Activation(model_cfg["activation"], name=f"res{i + 1}_act")(y)
        x = keras.layers.Add(name=f"res{i + 1}_add")([x, y])
    x = _collapse(model_cfg)(x)
    for layer in dense + head:
        x = layer(x)
    return keras.Model(inputs, x, name="peak2motif_cnn_residual")


# The trunks of `model: architecture`. A new trunk is one builder here, its name in the
# schema's enum, and (in peak2motif.explain) the methods that can explain it.
TRUNKS = {"cnn": _cnn, "cnn_residual": _cnn_residual, "cnn_lstm": _cnn_lstm,
          "cnn_attention": _cnn_attention}


def build_model(
    model_cfg: Mapping[str, Any], sequence_length: int, n_tasks: int, task_type: str,
    seed: int = 0,
) -> keras.Model:
    """Build (but do not compile) the network.

    Parameters
    ----------
    model_cfg : the ``model`` config section, with defaults filled in (:func:`with_defaults`).
    sequence_length : L; the input is one-hot ``(batch, L, 4)``.
    n_tasks : T; the output is ``(batch, T)``.
    task_type : binary, multitask, multiclass or regression (chooses the output activation).
    seed : seeds every initializer and dropout layer.

    Returns
    -------
    The model of the configured trunk (:data:`TRUNKS`), whose last layer is a separate
    ``Activation`` named ``output``, after the ``logits`` layer.
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {TASK_TYPES}")
    arch = model_cfg["architecture"]
    if arch not in TRUNKS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {list(TRUNKS)}")
    inputs = keras.Input((sequence_length, 4), name="onehot")
    return TRUNKS[arch](inputs, hidden_layers(model_cfg, seed), _dense_layers(model_cfg, seed),
                        _output_layers(model_cfg, n_tasks, task_type, seed), model_cfg, seed)


def make_optimizer(opt_cfg: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """A Keras optimizer from the ``training.optimizer`` section; each reads its own parameters."""
    name = opt_cfg["name"]
    common = {"learning_rate": opt_cfg["learning_rate"], "clipnorm": opt_cfg["clipnorm"]}
    eps = opt_cfg["epsilon"]
    if name == "sgd":
        return keras.optimizers.SGD(momentum=opt_cfg["momentum"], nesterov=opt_cfg["nesterov"],
                                    **common)
    if name == "adagrad":
        return keras.optimizers.Adagrad(
            initial_accumulator_value=opt_cfg["initial_accumulator_value"], epsilon=eps, **common)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rho=opt_cfg["rho"], momentum=opt_cfg["momentum"],
                                        epsilon=eps, **common)
    if name == "adadelta":
        return keras.optimizers.Adadelta(rho=opt_cfg["rho"], epsilon=eps, **common)
    if name in ("adam", "nadam"):
        cls = keras.optimizers.Adam if name == "adam" else keras.optimizers.Nadam
        return cls(beta_1=opt_cfg["beta_1"], beta_2=opt_cfg["beta_2"], epsilon=eps, **common)
    raise ValueError(f"unknown optimizer {name!r}")


def training_metrics(task_type: str, n_tasks: int) -> list:
    """Metrics logged per epoch: auROC and auPRC for classification, MAE for regression."""
    if task_type == "regression":
        return [keras.metrics.MeanAbsoluteError(name="mae")]
    multi = task_type == "multitask" and n_tasks > 1
    return [
        keras.metrics.AUC(curve="ROC", multi_label=multi, num_labels=n_tasks if multi else None,
                          name="auroc"),
        keras.metrics.AUC(curve="PR", multi_label=multi, num_labels=n_tasks if multi else None,
                          name="auprc"),
    ]


def compile_model(model: keras.Model, training_cfg: Mapping, task_type: str, n_tasks: int):
    """Compile ``model`` in place with the configured optimizer, loss and metrics."""
    model.compile(
        optimizer=make_optimizer(training_cfg["optimizer"]),
        loss=loss_name(training_cfg, task_type),
        metrics=training_metrics(task_type, n_tasks),
    )
    return model


def transfer_weights(source: keras.Model, target: keras.Model, freeze_convolutions: bool) -> list:
    """Copy the weights of layers with the same name and shapes from ``source`` to ``target``.

    The output layer is copied only when its shape matches (same number of tasks). With
    ``freeze_convolutions`` the copied Conv1D layers (and their BatchNormalization) are made
    non-trainable. Returns the names of the copied layers.
    """
    by_name = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        src = by_name.get(layer.name)
        if src is None or not layer.weights:
            continue
        if [w.shape for w in src.get_weights()] != [tuple(w.shape) for w in layer.weights]:
            continue
        layer.set_weights(src.get_weights())
        copied.append(layer.name)
        if freeze_convolutions and layer.name.startswith("conv"):
            layer.trainable = False
    return copied
