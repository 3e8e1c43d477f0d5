"""Cluster resources from measurement: a job's memory and wall time from its input size.

Each rule whose cost grows with the data asks for ``mem_mb`` and ``runtime`` from a straight
line fitted to ``bench/scale.py`` (wall seconds and peak RSS of every job at 10k, 30k and
100k peaks of 1 kb on a 1 Gb genome, ``bench/results/scale_stages.tsv``; BENCHMARKS.md,
"Scale"), with a margin, and doubles both on each retry (Snakemake's ``attempt``), so a job
killed for memory or time by the scheduler is resubmitted bigger when ``--retries`` is set
(the SLURM profile sets it).

The line's argument is the size in MB of the input that drives the cost: the peak files
(prepare_regions), regions.tsv (extract_sequences), the fold's split files (train_model,
evaluate_model) and their share per shard (compute_contributions: a shard reads only its own
sequences).
"""

from __future__ import annotations

import math

# rule: (MB fixed, MB per input MB, seconds fixed, seconds per input MB), fitted by
# bench/scale.py (its "fit" table) on this machine kind: 2 cores, no GPU.
COSTS: dict[str, tuple[float, float, float, float]] = {
    "prepare_regions": (120.9, 34.918, 1.4, 1.8158),
    "extract_sequences": (87.0, 6.97, 0.52, 0.089),
    "train_model": (844.3, 0.477, 23.11, 0.9305),
    "compute_contributions": (2760.0, 45.784, 3.76, 12.713),
}

MEM_MARGIN = 1.5  # peak RSS varies with the allocator and the data; ask for half as much again
TIME_MARGIN = 3.0  # cluster nodes are slower or busier than this one
MIN_MEM_MB = 1000
MIN_RUNTIME = 10  # minutes


def estimate(rule: str, input_mb: float, attempt: int = 1, time_input_mb: float | None = None
             ) -> tuple[int, int]:
    """``(mem_mb, runtime_minutes)`` for one job of ``rule`` reading ``input_mb`` MB
    (``time_input_mb``, default the same, is what its time grows with).

    Memory is rounded up to 500 MB; both double with each further ``attempt``.
    """
    mem0, mem1, s0, s1 = COSTS[rule]
    t_mb = input_mb if time_input_mb is None else time_input_mb
    grow = 2 ** max(0, attempt - 1)
    mem = max(MIN_MEM_MB, MEM_MARGIN * (mem0 + mem1 * max(0.0, input_mb)))
    minutes = max(MIN_RUNTIME, TIME_MARGIN * (s0 + s1 * max(0.0, t_mb)) / 60)
    return int(math.ceil(mem * grow / 500) * 500), int(math.ceil(minutes * grow))
