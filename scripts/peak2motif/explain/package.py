"""Method ``deeplift_package``: deeplift 0.6.13 (TF1) through :mod:`peak2motif.deeplift_compat`.

Kept as the reference implementation of DeepLIFT (and for its GenomicsDefault/RevealCancel
rules); it runs in a child process, needs a Sequential model it can convert, and pays a fixed
conversion cost per job. The model is saved to a temporary ``.h5`` for it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from peak2motif.errors import InputError
from peak2motif.explain.core import Explanation, Method, register
from peak2motif.sequences import codes_from_one_hot

CONVERTED_ACTIVATIONS = {"relu", "sigmoid", "tanh", "linear", "exponential"}


def unsupported(model_cfg: Mapping) -> list[str]:
    """Why deeplift's converter cannot explain the ``model:`` section (empty: it can)."""
    reasons = []
    arch = model_cfg["architecture"]
    if arch != "cnn":
        reasons.append(f"architecture {arch} (LSTM/attention layers; deeplift converts "
                       "Sequential CNNs only)")
    for i, block in enumerate(model_cfg["conv_blocks"]):
        if block.get("dilation", 1) > 1:
            reasons.append(f"conv_blocks[{i}] dilation {block['dilation']} (deeplift ignores "
                           "dilation and its logits are wrong)")
        if block.get("pool_type") == "max" and block.get("pool_size", 1) > 1:
            reasons.append(f"conv_blocks[{i}] pool_type max (deeplift's max-pool rule breaks "
                           "summation-to-delta by several logits)")
    if model_cfg["global_pooling"] == "max":
        reasons.append("global_pooling max (deeplift's max-pool rule breaks "
                       "summation-to-delta)")
    for key in ("first_activation", "activation"):
        if model_cfg[key] not in CONVERTED_ACTIVATIONS:
            reasons.append(f"{key} {model_cfg[key]} (deeplift converts only "
                           f"{', '.join(sorted(CONVERTED_ACTIVATIONS))})")
    if model_cfg.get("output_activation") == "softplus":
        reasons.append("output_activation softplus (deeplift's converter has no softplus)")
    return reasons


def _reference_codes(refs: np.ndarray) -> dict:
    """``ref_codes`` (one-hot references) or ``fixed_ref`` (one shared reference)."""
    n, r = refs.shape[:2]
    if r == 1 and (refs.strides[0] == 0 or np.array_equal(refs, np.broadcast_to(
            refs[:1], refs.shape))):
        return {"fixed_ref": np.ascontiguousarray(refs[0, 0])}
    if np.isin(refs, (0.0, 1.0)).all() and (refs.sum(-1) <= 1).all():
        return {"ref_codes": codes_from_one_hot(refs)}
    raise InputError("deeplift_package takes one-hot references or one fixed reference",
                     key="attribution: method", fix="use method deeplift for other references")


def run(model, onehot: np.ndarray, refs: np.ndarray, *, task_index: int = 0,
        batch_size: int = 128, mode: str = "GenomicsDefault", threads: int = 1) -> Explanation:
    """deeplift (package) contributions, in its child process.

    Parameters
    ----------
    onehot
        ``(N, L, 4)`` one-hot (N rows all zero).
    refs
        ``(N, R, L, 4)`` one-hot references, or ``(N, 1, L, 4)`` one fixed reference.
    batch_size
        (sequence, reference) pairs per session call.
    mode
        ``GenomicsDefault``, ``Rescale`` or ``RevealCancel``.
    threads
        Intra-op threads of the child's session.
    """
    from peak2motif.deeplift_compat import run_deeplift
    from peak2motif.explain.keras_tools import softmax_output

    t0 = time.perf_counter()
    # A softmax model's logits are explained centred (keras_tools.logit_model): the package
    # explains raw logits, and explaining is linear in the output, so class c's centred
    # contributions are its own minus the mean over all classes.
    centred = softmax_output(model)
    classes = range(int(model.outputs[0].shape[-1])) if centred else [task_index]
    with tempfile.TemporaryDirectory(prefix="deeplift_package_") as tmp:
        path = Path(tmp, "model.h5")
        model.save(path)
        runs = [run_deeplift(path, codes_from_one_hot(onehot), **_reference_codes(refs),
                             mode=mode, task_index=k, batch_size=batch_size, threads=threads)
                for k in classes]
    res = dict(runs[list(classes).index(task_index)])
    if centred:
        for key in ("hypothetical", "logit", "logit_ref", "contrib_sum"):
            res[key] = res[key] - np.mean([r[key] for r in runs], axis=0)
        res["convert_seconds"] = sum(r["convert_seconds"] for r in runs)
        res["score_seconds"] = sum(r["score_seconds"] for r in runs)
        res["batch_max_error"] = max(r["batch_max_error"] for r in runs)
    out = Explanation(res["hypothetical"].astype(np.float32), res["logit"].astype(np.float32),
                      res["logit_ref"].astype(np.float32),
                      res["contrib_sum"].astype(np.float32), "deeplift_package")
    out.diagnostics.update(
        mode=mode, convert_seconds=res["convert_seconds"], score_seconds=res["score_seconds"],
        total_seconds=time.perf_counter() - t0, batch_max_error=res["batch_max_error"],
        summation_max_abs_error=float(out.summation_errors().max()) if len(onehot) else 0.0)
    return out


METHOD = register(Method(
    name="deeplift_package", run=run, exact=True, unsupported=unsupported,
    options={"mode": "GenomicsDefault", "threads": 1}, batch_size=128,
    description="deeplift 0.6.13 (TF1, child process); Sequential CNNs with average pooling",
))
