"""A small compatibility layer that runs deeplift 0.6.13.0 (TF1 code) on TensorFlow 2.21 / Keras 3.

deeplift has had no release since 2021. It builds TF1 graphs (placeholders, sessions) and reads
Keras 2 model configs. Three things make it run unchanged, with no edit to site-packages and no
vendored copy:

1. ``tf.compat.v1.disable_v2_behavior()`` is called before deeplift builds anything. This is
   process-wide and breaks eager Keras in the same process, so the workflow runs deeplift in a
   child Python process (:func:`run_deeplift`); the parent stays eager for Keras and shap.
2. deeplift's ``import tensorflow`` resolves to ``tf.compat.v1`` while deeplift is imported
   (``sys.modules['tensorflow']`` is swapped and restored, :func:`import_deeplift`).
3. The Keras 3 ``model_config`` inside the ``.h5`` is rewritten (:func:`deeplift_model_config`):
   the InputLayer (``batch_shape``, no weights group) is dropped and its shape moved to the first
   layer as ``batch_input_shape``; a ``ReLU`` layer with default settings becomes
   ``Activation('relu')``. The rewritten JSON is passed through ``convert_model_from_saved_files
   (h5, json_file=...)``.

The converter accepts only some models and fails silently on others (a dilated convolution
converts and gives wrong logits), so :func:`deeplift_model_config` refuses, with a message that
says what to change, any layer, activation or setting outside what was verified. ``exponential``
activations (first-layer "exp" filters, Koo & Ploenzke 2021) are supported through a
nonlinearity class registered here (:class:`_Exponential`), because deeplift's
``custom_conversion_funcs`` never reaches Sequential models.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from peak2motif.errors import InputError

log = logging.getLogger(__name__)

MODES = {
    "GenomicsDefault": "DeepLIFT_GenomicsDefault",
    "Rescale": "Rescale",
    "RevealCancel": "RevealCancel",
}

# Keras layer classes the converter handles correctly (verified; see /work/shared/FACTS.md).
SUPPORTED_LAYERS = {
    "Conv1D", "MaxPooling1D", "GlobalMaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
    "BatchNormalization", "Dropout", "Flatten", "Dense", "Activation", "ReLU",
}
SUPPORTED_ACTIVATIONS = {"linear", "relu", "sigmoid", "tanh", "softmax", "exponential"}

_FIX_ARCHITECTURE = (
    "use a Sequential model of Conv1D (padding 'valid', no dilation), BatchNormalization, "
    "ReLU/Activation, AveragePooling1D, Dropout, Flatten and Dense layers with activations "
    "relu, sigmoid, tanh, softmax, linear or exponential (the default `model:` settings do)"
)


def read_keras_config(h5_path: str | Path) -> dict:
    """The ``model_config`` JSON stored in a Keras ``.h5`` file, as a dict."""
    with h5py.File(h5_path, "r") as h5:
        if "model_config" not in h5.attrs:
            raise InputError(
                "no model_config attribute: not a Keras model saved in HDF5 format",
                path=str(h5_path), fix="save the model with model.save('model.h5')",
            )
        raw = h5.attrs["model_config"]
    return json.loads(raw.decode() if hasattr(raw, "decode") else raw)


def _config_activation_name(value: Any) -> str:
    if isinstance(value, dict):  # a serialised activation object
        value = value.get("config", {}).get("name") or value.get("class_name", "?")
    return str(value).lower()


def deeplift_model_config(h5_path: str | Path) -> dict:
    """Check a Keras 3 Sequential ``.h5`` model and rewrite its config for deeplift's converter.

    Returns
    -------
    dict
        ``{"class_name": "Sequential", "config": [layer configs]}`` with the InputLayer removed,
        ``batch_input_shape`` on the first layer and ReLU layers as ``Activation('relu')``.

    Raises
    ------
    InputError
        For anything the converter cannot handle or converts wrongly, naming the layer and
        what to change.
    """
    cfg = read_keras_config(h5_path)
    path = str(h5_path)
    if cfg.get("class_name") != "Sequential":
        raise InputError(
            f"model class {cfg.get('class_name')!r} cannot be converted by deeplift: only "
            "Sequential models are supported", path=path, fix=_FIX_ARCHITECTURE,
        )
    layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
    layers = json.loads(json.dumps(layers))  # a deep copy we may edit
    batch_shape = None
    if layers and layers[0]["class_name"] == "InputLayer":
        lc = layers.pop(0)["config"]
        batch_shape = lc.get("batch_shape") or lc.get("batch_input_shape")
    if batch_shape is None and isinstance(cfg["config"], dict):
        batch_shape = cfg["config"].get("build_input_shape")
    if not layers or batch_shape is None:
        raise InputError("the model has no layers or no input shape", path=path,
                         fix="build the model with keras.Input((L, 4)) as its first layer")
    if len(batch_shape) != 3 or batch_shape[-1] != 4:
        raise InputError(
            f"input shape {batch_shape} is not (batch, length, 4) one-hot sequence",
            path=path, fix="train on one-hot sequences of shape (L, 4)",
        )
    for i, layer in enumerate(layers):
        cls, lc = layer["class_name"], layer["config"]
        where = f"layer {i} ({lc.get('name')}, {cls})"
        if cls not in SUPPORTED_LAYERS:
            raise InputError(
                f"{where} is not supported by the deeplift converter", path=path,
                fix=_FIX_ARCHITECTURE,
            )
        if cls == "ReLU":
            if lc.get("max_value") is not None or lc.get("negative_slope", 0) or lc.get(
                "threshold", 0
            ):
                raise InputError(f"{where} has max_value/negative_slope/threshold set, which "
                                 "deeplift cannot represent", path=path, fix=_FIX_ARCHITECTURE)
            layer["class_name"] = "Activation"
            lc = layer["config"] = {"name": lc["name"], "activation": "relu"}
        if "activation" in lc:
            act = _config_activation_name(lc["activation"])
            if act not in SUPPORTED_ACTIVATIONS:
                raise InputError(f"{where} has activation {act!r}, which deeplift cannot "
                                 "convert", path=path, fix=_FIX_ARCHITECTURE)
            lc["activation"] = act
        if any(d != 1 for d in lc.get("dilation_rate", [1])):
            # Converts silently with padding "same" and gives wrong logits (FACTS.md).
            raise InputError(f"{where} uses dilation_rate {lc['dilation_rate']}, which deeplift "
                             "ignores (its logits would be wrong)", path=path,
                             fix="use dilation_rate 1 " + "(" + _FIX_ARCHITECTURE + ")")
        if cls == "Conv1D" and lc.get("groups", 1) != 1:
            raise InputError(f"{where} uses grouped convolution", path=path,
                             fix=_FIX_ARCHITECTURE)
        if cls in ("Conv1D", "Dense") and not lc.get("use_bias", True):
            pass  # deeplift fills a zero bias itself
        if cls == "BatchNormalization" and lc.get("axis") not in (-1, 2, [-1], [2]):
            raise InputError(f"{where} normalises axis {lc.get('axis')}, not the channel axis",
                             path=path, fix="use BatchNormalization(axis=-1)")
        if isinstance(lc.get("axis"), list):
            lc["axis"] = lc["axis"][0]
    layers[0]["config"]["batch_input_shape"] = list(batch_shape)
    return {"class_name": "Sequential", "config": layers}


def layer_summary(h5_path: str | Path) -> list[str]:
    """Class names of the model's layers (for error hints)."""
    cfg = read_keras_config(h5_path)
    layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
    return [layer["class_name"] for layer in layers]


_DEEPLIFT: dict[str, Any] = {}


def import_deeplift() -> dict[str, Any]:
    """Disable TF2 behaviour (process-wide) and import deeplift against ``tf.compat.v1``.

    After this call, eager Keras no longer works in this process: call it only in a process
    that does nothing else (see :func:`run_deeplift`).
    """
    if _DEEPLIFT:
        return _DEEPLIFT
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.compat.v1.disable_v2_behavior()
    saved = sys.modules["tensorflow"]
    sys.modules["tensorflow"] = tf.compat.v1
    try:
        import deeplift.conversion.kerasapi_conversion as kc
        import deeplift.layers as dl_layers
        import deeplift.util as dl_util
    finally:
        sys.modules["tensorflow"] = saved
    _fix_rescale_fallback(dl_layers)
    _register_exponential(kc, dl_layers, tf.compat.v1)
    _DEEPLIFT.update(tf=tf.compat.v1, kc=kc, layers=dl_layers, util=dl_util)
    return _DEEPLIFT


def _fix_rescale_fallback(dl_layers) -> None:
    """Take the Rescale fallback derivative at the layer's *input* reference.

    Where input and reference are within 1e-7, deeplift's Rescale multiplier falls back to the
    derivative of the nonlinearity, but ``Activation._build_fwd_pass_vars`` evaluates it at the
    layer's *output* reference: ``sigma'(sigma(z))`` instead of ``sigma'(z)``, ``tanh'(tanh(z))``
    instead of ``tanh'(z)``, ``exp(exp(z))`` instead of ``exp(z)`` (which overflowed to inf and
    gave NaN multipliers on trained models). It is right only for ReLU, whose derivative has
    the same sign test at ``z`` and ``relu(z)``. This is deeplift's method with that one line
    changed (at run time, in the deeplift child process only).
    """
    cls = dl_layers.Activation
    if getattr(cls, "_peak2motif_fallback", False):
        return

    def _build_fwd_pass_vars(self):
        self._build_fwd_pass_vars_core()
        self._activation_vars = self._build_activation_vars(self._get_input_activation_vars())
        self._reference_vars = self._build_reference_vars()
        self._diff_from_reference_vars = self._build_diff_from_reference_vars()
        self._gradient_at_default_activation = self._get_gradient_at_activation(
            self._get_input_reference_vars())  # deeplift: self.get_reference_vars()
        self._pos_contribs, self._neg_contribs = self._build_pos_and_neg_contribs()
        self._initialize_mxts()

    cls._build_fwd_pass_vars = _build_fwd_pass_vars
    cls._peak2motif_fallback = True


def _register_exponential(kc, dl_layers, tf1) -> None:
    """Teach the converter ``activation='exponential'`` with a deeplift nonlinearity class.

    deeplift's activation table is a dict built inside ``activation_to_conversion_function``
    and ``custom_conversion_funcs`` is not passed through for Sequential models, so the
    module-level look-up function is wrapped (at run time, in this process only). Its Rescale
    fallback derivative, ``exp`` at the input reference, comes from
    :func:`_fix_rescale_fallback`.
    """
    if getattr(kc.activation_to_conversion_function, "_peak2motif", False):
        return

    class _Exponential(dl_layers.Activation):
        def _build_activation_vars(self, input_act_vars):
            return tf1.exp(input_act_vars)

        def _get_gradient_at_activation(self, activation_vars):
            return tf1.exp(activation_vars)

    def exponential_conversion(name, verbose, nonlinear_mxts_mode, **kwargs):
        return [_Exponential(name=name, verbose=verbose, nonlinear_mxts_mode=nonlinear_mxts_mode)]

    original = kc.activation_to_conversion_function

    def lookup(activation_name):
        if activation_name.lower() == "exponential":
            return exponential_conversion
        return original(activation_name)

    lookup._peak2motif = True
    kc.activation_to_conversion_function = lookup


class DeepLiftScorer:
    """DeepLIFT multipliers and forward logits of one converted model (graph mode).

    Parameters
    ----------
    h5_path
        Keras 3 Sequential model saved as ``.h5``.
    mode
        ``GenomicsDefault`` (Rescale after convolutions, RevealCancel after dense layers),
        ``Rescale`` or ``RevealCancel``.
    task_index
        Output unit (column of the pre-activation layer) to explain.
    threads
        Intra-op threads of the TF1 session.
    """

    def __init__(self, h5_path: str | Path, mode: str = "GenomicsDefault", task_index: int = 0,
                 threads: int = 1) -> None:
        if mode not in MODES:
            raise InputError(f"unknown DeepLIFT mode {mode!r}", key="attribution: mode",
                             fix=f"use one of {', '.join(MODES)}")
        dl = import_deeplift()
        tf1, kc, util = dl["tf"], dl["kc"], dl["util"]
        config = deeplift_model_config(h5_path)
        # deeplift keeps the target's task vector in a variable of util.get_session()'s session;
        # give it ours (thread settings) before conversion creates that variable.
        sess = tf1.Session(config=tf1.ConfigProto(intra_op_parallelism_threads=threads,
                                                  inter_op_parallelism_threads=threads))
        util._SESS = sess
        with tempfile.TemporaryDirectory() as tmp:
            json_file = Path(tmp, "model.json")
            json_file.write_text(json.dumps(config))
            model = kc.convert_model_from_saved_files(
                str(h5_path), json_file=str(json_file), verbose=False,
                nonlinear_mxts_mode=getattr(kc.NonlinearMxtsMode, MODES[mode]),
            )
        layers = self.layers = model.get_layers()
        # The target is the last layer before the output nonlinearity (logits); a linear output
        # activation converts to nothing, so then the last layer is the target itself.
        is_act = isinstance(layers[-1], dl["layers"].Activation)
        self.target_layer_idx = -2 if is_act else -1
        n_out = int(layers[self.target_layer_idx].get_activation_vars().shape[-1])
        if not 0 <= task_index < n_out:
            raise InputError(f"task index {task_index} is out of range for a model with "
                             f"{n_out} outputs", key="attribution: task")
        self.task_index = task_index
        # Builds the backward graph and sets the target layer's scoring mode.
        model.get_target_multipliers_func(find_scores_layer_idx=0,
                                          target_layer_idx=self.target_layer_idx)
        inp, target = layers[0], layers[self.target_layer_idx]
        # Activate the target once: deeplift's own wrapper toggles it around every call, and each
        # toggle adds assign ops to the graph (slower and slower runs).
        target.update_task_index(task_index)
        target.set_active()
        self._sess = sess
        self._feeds = (inp.get_activation_vars(), inp.get_reference_vars())
        self._fetches = [inp.get_mxts(), target.get_activation_vars()[:, task_index],
                         target.get_reference_vars()[:, task_index]]
        self.mode = mode
        self._tf1 = tf1
        self._reduced: dict[int, list] = {}

    def _reduced_fetches(self, r: int) -> list:
        """Graph ops giving, for R references per sequence, the mean hypothetical
        contributions, the per-pair contribution sums and the logits (less to copy out)."""
        if r not in self._reduced:
            tf1 = self._tf1
            x, ref = self._feeds
            m, lx, lr = self._fetches
            length = int(x.shape[1])
            # hypothetical: (e_b - ref) . m for each base b = m_b - sum_c ref_c m_c
            h = m - tf1.reduce_sum(ref * m, axis=-1, keepdims=True)
            self._reduced[r] = [
                tf1.reduce_mean(tf1.reshape(h, [-1, r, length, 4]), axis=1),
                tf1.reduce_sum((x - ref) * m, axis=[1, 2]), lx, lr,
            ]
        return self._reduced[r]

    def score(self, onehot: np.ndarray, refs: np.ndarray, batch_size: int = 256) -> dict:
        """Hypothetical contributions averaged over references, with what the checks need.

        Parameters
        ----------
        onehot
            ``(N, L, 4)`` float32 sequences.
        refs
            ``(N, R, L, 4)`` float32 references, R per sequence.
        batch_size
            (sequence, reference) pairs per session call.

        Returns
        -------
        dict
            ``hypothetical`` ``(N, L, 4)`` float32 (mean over references of
            ``sum_c (e_b - ref)_c * m_c`` for each base b, as
            ``deeplift.util.get_hypothetical_contribs_func_onehot``);
            ``contrib_sum`` ``(N, R)`` sum over positions and channels of ``(x - ref) * m``;
            ``logit`` ``(N,)`` and ``logit_ref`` ``(N, R)`` from deeplift's forward pass;
            ``batch_max_error`` ``(n_batches,)`` max |contrib_sum - (logit - logit_ref)| per batch.
        """
        n, r, length, _ = refs.shape
        fetches = self._reduced_fetches(r)
        hyp = np.zeros(onehot.shape, dtype=np.float32)
        contrib_sum = np.zeros((n, r))
        logit = np.zeros(n)
        logit_ref = np.zeros((n, r))
        batch_errors = []
        seqs_per_batch = max(1, batch_size // r)
        for s0 in range(0, n, seqs_per_batch):
            s1 = min(n, s0 + seqs_per_batch)
            x = np.repeat(onehot[s0:s1], r, axis=0)
            ref = refs[s0:s1].reshape(-1, length, 4)
            h, cs, lx, lr = self._sess.run(fetches, feed_dict={self._feeds[0]: x,
                                                               self._feeds[1]: ref})
            hyp[s0:s1] = h
            contrib_sum[s0:s1] = cs.reshape(-1, r)
            logit[s0:s1] = lx.reshape(-1, r)[:, 0]
            logit_ref[s0:s1] = lr.reshape(-1, r)
            batch_errors.append(float(np.abs(cs - (lx - lr)).max()))
        return dict(hypothetical=hyp, contrib_sum=contrib_sum, logit=logit,
                    logit_ref=logit_ref, batch_max_error=np.asarray(batch_errors))


def _onehot_codes(codes: np.ndarray) -> np.ndarray:
    from peak2motif.sequences import one_hot

    return one_hot(codes)


def _worker(h5_path: str, codes: np.ndarray, ref_codes: np.ndarray | None,
            fixed_ref: np.ndarray | None, mode: str, task_index: int, batch_size: int,
            threads: int, rescale_sample: int = 0) -> dict:
    """Child-process entry point of :func:`run_deeplift`."""
    t0 = time.perf_counter()
    scorer = DeepLiftScorer(h5_path, mode=mode, task_index=task_index, threads=threads)
    t1 = time.perf_counter()
    onehot = _onehot_codes(codes)
    if ref_codes is not None:
        refs = _onehot_codes(ref_codes)
    else:
        refs = np.broadcast_to(fixed_ref, (len(codes), 1) + fixed_ref.shape).astype(np.float32)
    out = scorer.score(onehot, refs, batch_size=batch_size)
    out["convert_seconds"] = t1 - t0
    out["score_seconds"] = time.perf_counter() - t1
    out["target_layer_idx"] = scorer.target_layer_idx
    if rescale_sample:
        k = min(rescale_sample, len(codes))
        if mode == "Rescale":
            out["rescale_hypothetical"] = out["hypothetical"][:k]
        else:
            rescale = DeepLiftScorer(h5_path, mode="Rescale", task_index=task_index,
                                     threads=threads)
            out["rescale_hypothetical"] = rescale.score(onehot[:k], refs[:k],
                                                        batch_size)["hypothetical"]
    return out


def run_deeplift(h5_path: str | Path, codes: np.ndarray, *, ref_codes: np.ndarray | None = None,
                 fixed_ref: np.ndarray | None = None, mode: str = "GenomicsDefault",
                 task_index: int = 0, batch_size: int = 128, threads: int = 1,
                 rescale_sample: int = 0) -> dict:
    """Run :class:`DeepLiftScorer` in a fresh Python process, so this process stays eager.

    The child is ``python -m peak2motif.deeplift_compat`` with arrays passed through a
    temporary ``.npz`` (not ``multiprocessing``: its spawn start method re-runs the parent's
    main script, which for a Snakemake ``script:`` fails).

    Parameters
    ----------
    codes
        ``(N, L)`` uint8 sequence codes (see :mod:`peak2motif.sequences`).
    ref_codes
        ``(N, R, L)`` uint8 codes of R references per sequence (e.g. dinucleotide shuffles), or
    fixed_ref
        ``(L, 4)`` float32, one reference shared by all sequences (uniform, zeros, GC).
    rescale_sample
        Also score the first ``rescale_sample`` sequences in Rescale mode
        (``rescale_hypothetical``): the mode shap DeepExplainer implements, for the cross-check.

    Returns
    -------
    The dict of :meth:`DeepLiftScorer.score`, plus ``convert_seconds`` and ``score_seconds``.
    An :class:`InputError` raised in the child (e.g. an unsupported model) is raised here.
    """
    if (ref_codes is None) == (fixed_ref is None):
        raise ValueError("give exactly one of ref_codes and fixed_ref")
    import subprocess

    with tempfile.TemporaryDirectory(prefix="deeplift_") as tmp:
        inp, out = Path(tmp, "in.npz"), Path(tmp, "out.npz")
        arrays = {"codes": codes}
        if ref_codes is not None:
            arrays["ref_codes"] = ref_codes
        else:
            arrays["fixed_ref"] = np.asarray(fixed_ref, dtype=np.float32)
        np.savez(inp, **arrays)
        args = dict(h5_path=str(h5_path), mode=mode, task_index=task_index,
                    batch_size=batch_size, threads=threads, rescale_sample=rescale_sample)
        Path(tmp, "args.json").write_text(json.dumps(args))
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [package_root] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
        proc = subprocess.run([sys.executable, "-m", "peak2motif.deeplift_compat", tmp],
                              capture_output=True, text=True, env=env)
        error = Path(tmp, "error.json")
        if error.exists():
            err = json.loads(error.read_text())
            if err["type"] == "InputError":
                raise InputError(err["message"])
            raise RuntimeError(f"deeplift failed: {err['type']}: {err['message']}")
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"deeplift child process failed ({proc.returncode}):\n"
                               f"{proc.stderr[-4000:]}")
        with np.load(out) as res:
            result = {k: res[k] for k in res.files}
    for key in ("convert_seconds", "score_seconds", "target_layer_idx"):
        result[key] = result[key].item()
    return result


def _main(folder: str) -> None:
    """Child entry point: read ``in.npz`` and ``args.json`` in ``folder``, write ``out.npz``."""
    folder_path = Path(folder)
    args = json.loads((folder_path / "args.json").read_text())
    try:
        with np.load(folder_path / "in.npz") as data:
            arrays = {k: data[k] for k in data.files}
        out = _worker(args["h5_path"], arrays["codes"], arrays.get("ref_codes"),
                      arrays.get("fixed_ref"), args["mode"], args["task_index"],
                      args["batch_size"], args["threads"], args["rescale_sample"])
    except Exception as exc:  # reported to the parent, which re-raises it
        (folder_path / "error.json").write_text(
            json.dumps({"type": type(exc).__name__, "message": str(exc)}))
        raise
    np.savez(folder_path / "out.npz", **{k: np.asarray(v) for k, v in out.items()})


if __name__ == "__main__":
    _main(sys.argv[1])
