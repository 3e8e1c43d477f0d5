"""Attribution methods behind one seam.

``explain(model, onehot, refs, method=...)`` returns the same :class:`Explanation` for every
method in :data:`METHODS` (see :mod:`peak2motif.explain.core` for the data contract). The
built-in methods register themselves when their module is imported here:

- ``deeplift``: native TF2 DeepLIFT, Rescale rule (:mod:`.deeplift`, :mod:`.rescale`); exact.
- ``integrated_gradients``: any differentiable model (:mod:`.integrated_gradients`).
- ``deeplift_package``: deeplift 0.6.13 in a child process (:mod:`.package`); exact.

Adding a method is one module that builds a :class:`Method` and calls :func:`register`, plus
its import below and its name in the schema's ``attribution: method`` enum. Importing this
package imports no TensorFlow (config-time checks use it).
"""

from peak2motif.explain import deeplift, integrated_gradients, package  # noqa: F401 (register)
from peak2motif.explain.checks import HypotheticalCheck, independent_hypothetical_check
from peak2motif.explain.core import (
    METHODS,
    Explanation,
    Method,
    check_method,
    contribution_sums,
    default_method,
    explain,
    get_method,
    hypothetical_contributions,
    register,
)
from peak2motif.explain.keras_tools import logit_model

__all__ = [
    "METHODS", "Explanation", "HypotheticalCheck", "Method", "check_method",
    "contribution_sums", "default_method", "explain", "get_method", "hypothetical_contributions",
    "independent_hypothetical_check", "logit_model", "register",
]
