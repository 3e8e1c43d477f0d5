"""Tiny FASTA / BED fixtures shared by the data-stage tests (made in the test, seeded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_genome(path: Path, lengths: dict[str, int], seed: int = 0, gc: float = 0.42,
                 n_runs: dict[str, tuple[int, int]] | None = None) -> Path:
    """Random FASTA with 60-bp lines, some lower case, optional N runs ``{chrom: (start, end)}``."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for c, n in lengths.items():
            p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
            seq = np.array(list("ACGT"))[rng.choice(4, size=n, p=p)]
            seq[n // 3:n // 3 + 100] = np.char.lower(seq[n // 3:n // 3 + 100])
            if n_runs and c in n_runs:
                a, b = n_runs[c]
                seq[a:b] = "N"
            s = "".join(seq)
            fh.write(f">{c}\n" + "\n".join(s[i:i + 60] for i in range(0, n, 60)) + "\n")
    return path


def write_peaks(path: Path, rows: list[tuple], header: str = "") -> Path:
    """narrowPeak-like lines from tuples (chrom, start, end[, ...])."""
    with open(path, "w") as fh:
        fh.write(header)
        for r in rows:
            fh.write("\t".join(str(x) for x in r) + "\n")
    return path


def narrowpeak(chrom: str, summit: int, signal: float = 5.0, half: int = 150,
               name: str = ".") -> tuple:
    start = summit - half
    return (chrom, start, summit + half, name, 100, ".", signal, 10.0, 8.0, half)


def spread_peaks(lengths: dict[str, int], per_chrom: int, seed: int = 1,
                 spacing: int = 1500) -> list[tuple]:
    """``per_chrom`` narrowPeak rows on each chromosome, summits ``spacing`` apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, n in lengths.items():
        for k in range(per_chrom):
            s = 1000 + k * spacing + int(rng.integers(0, 100))
            assert s + 1000 < n
            rows.append(narrowpeak(c, s, signal=float(rng.uniform(2, 20)), name=f"{c}_p{k}"))
    return rows
