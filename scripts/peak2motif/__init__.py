"""peak2motif: the library behind the workflow.

Every rule's script in ``scripts/`` is a thin adapter that calls one function here.
Functions take and return plain values (paths, arrays, data frames) and never see the
``snakemake`` object, so they can be tested and reused on their own.

Array conventions, stated once:
- one-hot sequences inside the library are ``(N, L, 4)`` float32 with bases in the order A, C, G, T;
- files handed to TF-MoDISco's CLI are ``(N, 4, L)`` (see ``peak2motif.motifs``).
"""

__version__ = "0.1.0"
