"""The attribution seam: one entry point, one result type, one registry, one projection.

Data contract (every method, in and out)
----------------------------------------
- ``onehot``  ``(N, L, 4)`` float32, A, C, G, T; an N base is an all-zero row.
- ``refs``    ``(N, R, L, 4)`` float32, R references per sequence (dinucleotide shuffles,
  or R = 1 for a fixed reference; a broadcast view is fine, it is never copied whole).
- The explained quantity is the **logit** (the input of the model's final ``Activation``
  layer named ``output``) of output column ``task_index``; see :func:`logit_model`.
- The result is an :class:`Explanation` with the same arrays for every method.

A method is one module that builds a :class:`Method` and calls :func:`register`; this module
imports no TensorFlow, so :func:`check_method` and :func:`default_method` can run when the
config is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from peak2motif.errors import InputError

METHOD_KEY = "attribution: method"


@dataclass
class Explanation:
    """What every attribution method returns.

    Attributes
    ----------
    hypothetical
        ``(N, L, 4)`` float32: for base b at position i, the contribution base b would make
        there, ``(e_b - ref_i) . m_i`` (:func:`hypothetical_contributions`), mean over the R
        references. ``hypothetical * onehot`` is the actual contribution.
    logit
        ``(N,)`` float32, the explained logit of each sequence.
    logit_ref
        ``(N, R)`` float32, the logit of each reference.
    contrib_sum
        ``(N, R)`` float32, the sum over positions and bases of ``(x - ref) * m`` for each
        (sequence, reference) pair; equals ``logit - logit_ref`` for an exact method.
    method
        Name of the method in :data:`METHODS`.
    diagnostics
        Method-specific values (timings, completeness per pair, the bound a check should use).
    """

    hypothetical: np.ndarray
    logit: np.ndarray
    logit_ref: np.ndarray
    contrib_sum: np.ndarray
    method: str
    diagnostics: dict = field(default_factory=dict)

    def summation_errors(self) -> np.ndarray:
        """``(N, R)`` |contrib_sum - (logit - logit_ref)| per (sequence, reference) pair."""
        return np.abs(self.contrib_sum - (self.logit[:, None] - self.logit_ref))


@dataclass(frozen=True)
class Method:
    """One registered attribution method.

    Attributes
    ----------
    name
        The ``attribution: method`` value.
    run
        ``run(model, onehot, refs, *, task_index, batch_size, **options) -> Explanation``.
    exact
        True when the method promises summation-to-delta (contributions of each pair add up to
        ``logit - logit_ref`` up to float round-off): checks then hold it to a round-off
        tolerance. False for approximations (integrated gradients), whose error bound is in
        ``Explanation.diagnostics``.
    unsupported
        ``unsupported(model_cfg) -> list[str]``: why a ``model:`` config section (schema
        defaults filled in) cannot be explained; empty when it can. Imports no TensorFlow.
    options
        Method options and their defaults; :func:`explain` refuses any other keyword.
    batch_size
        Default rows per compiled call.
    description
        One line for error messages and docs.
    """

    name: str
    run: Callable[..., Explanation]
    exact: bool
    unsupported: Callable[[Mapping], list[str]]
    options: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 1024
    description: str = ""


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (a method module calls this when imported)."""
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name``, or an :class:`InputError` listing the others."""
    if name not in METHODS:
        raise InputError(f"unknown attribution method {name!r}", key=METHOD_KEY,
                         fix=f"use auto or one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def hypothetical_contributions(multipliers, refs, xp=np):
    """Hypothetical contributions from multipliers: the projection every method shares.

    For base b at position i and one reference, the hypothetical contribution is what the
    contribution would be if the input had base b there: ``(e_b - ref_i) . m_i``
    = ``m_ib - sum_c ref_ic m_ic``; the result is its mean over the references.

    Parameters
    ----------
    multipliers
        ``(N, R, L, 4)`` multipliers of each (sequence, reference) pair: d(logit)/d(input)
        for gradient methods, DeepLIFT's multipliers, path-averaged gradients for IG.
    refs
        ``(N, R, L, 4)`` the references the multipliers belong to.
    xp
        Array namespace: ``numpy`` (default), or ``tf.experimental.numpy`` inside a compiled
        TensorFlow function.

    Returns
    -------
    ``(N, L, 4)``.
    """
    projected = multipliers - xp.sum(refs * multipliers, axis=-1, keepdims=True)
    return xp.mean(projected, axis=1)


def contribution_sums(multipliers, onehot, refs, xp=np):
    """``(N, R)`` sum over positions and bases of ``(x - ref) * m`` for each pair.

    Shapes as in :func:`hypothetical_contributions`; ``onehot`` is ``(N, L, 4)``.
    """
    return xp.sum((onehot[:, None] - refs) * multipliers, axis=(2, 3))


def check_inputs(onehot: np.ndarray, refs: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``onehot`` is ``(N, L, 4)`` and ``refs`` ``(N, R, L, 4)``."""
    if onehot.ndim != 3 or onehot.shape[-1] != 4:
        raise ValueError(f"onehot must be (N, L, 4), got {onehot.shape}")
    if refs.ndim != 4 or refs.shape[0] != onehot.shape[0] or refs.shape[2:] != onehot.shape[1:]:
        raise ValueError(f"refs must be (N, R, L, 4) = ({onehot.shape[0]}, R, "
                         f"{onehot.shape[1]}, 4), got {refs.shape}")


def explain(model, onehot: np.ndarray, refs: np.ndarray, *, method: str = "deeplift",
            task_index: int = 0, batch_size: int | None = None, **options) -> Explanation:
    """Explain the logit of output ``task_index`` of ``model`` with a registered method.

    Parameters
    ----------
    model
        Keras 3 model whose last layer is an ``Activation`` (named ``output``) after the
        logits, as :func:`peak2motif.model.build_model` makes it.
    onehot
        ``(N, L, 4)`` float32 sequences (float64 is kept as float64, for float64 models).
    refs
        ``(N, R, L, 4)`` float32 references (``np.broadcast_to`` of one ``(L, 4)`` reference
        for a fixed one).
    method
        A key of :data:`METHODS` (``deeplift``, ``integrated_gradients``, ``deeplift_package``).
    task_index
        Output column whose logit is explained.
    batch_size
        Rows per compiled call (method default when None).
    **options
        Method options (``Method.options`` lists them with their defaults).

    Returns
    -------
    :class:`Explanation`.
    """
    m = get_method(method)
    unknown = set(options) - set(m.options)
    if unknown:
        raise InputError(f"method {method!r} has no option(s) {sorted(unknown)}",
                         key="attribution", fix=f"use only {sorted(m.options) or 'none'}")
    # float32 unless given float64 (for accuracy checks on float64 models)
    dtype = np.float64 if np.asarray(onehot).dtype == np.float64 else np.float32
    onehot = np.asarray(onehot, dtype=dtype)
    refs = np.asarray(refs, dtype=dtype)
    check_inputs(onehot, refs)
    return m.run(model, onehot, refs, task_index=task_index,
                 batch_size=batch_size or m.batch_size, **{**m.options, **options})


# --- config-time checks (no TensorFlow) ---------------------------------------------------


def _filled(model_cfg: Mapping | None) -> dict:
    from peak2motif.config import with_defaults

    return with_defaults("model", model_cfg)


def default_method(model_cfg: Mapping | None) -> str:
    """The method ``attribution: method: auto`` stands for, given the ``model:`` section.

    Native DeepLIFT (exact, fastest) where it has a rule for every layer; integrated
    gradients for the recurrent and attention architectures.
    """
    return "deeplift" if not METHODS["deeplift"].unsupported(_filled(model_cfg)) \
        else "integrated_gradients"


def check_method(model_cfg: Mapping | None, method: str) -> str:
    """Refuse, when the config is read, a method that cannot explain the configured model.

    Parameters
    ----------
    model_cfg
        The ``model:`` config section (missing keys take the schema defaults).
    method
        ``auto`` or a key of :data:`METHODS`.

    Returns
    -------
    The method that will run (``auto`` resolved by :func:`default_method`).

    Raises
    ------
    InputError
        With key ``attribution: method``, every reason, and the methods that would work.
    """
    cfg = _filled(model_cfg)
    if method == "auto":
        method = default_method(cfg)
    m = get_method(method)
    reasons = m.unsupported(cfg)
    if not reasons:
        return method
    working = [name for name, other in sorted(METHODS.items()) if not other.unsupported(cfg)]
    fix = (f"use `attribution: method:` {' or '.join(working)} (or auto)" if working
           else "change the model section")
    raise InputError(f"method {method!r} cannot explain this model: " + "; ".join(reasons),
                     key=METHOD_KEY, fix=fix + ", or change the `model:` settings named")
