"""Tiny split files with a planted motif, shared by the training-stage tests.

Positives carry the GATA-like site ``AGATAAGA`` (on either strand) at a random position;
negatives are random sequence. Large enough for a small CNN to learn, small enough for CI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from peak2motif.sequences import encode, write_split

MOTIF = "AGATAAGA"
MOTIF2 = "CCGCGAGG"


def planted_codes(n: int, length: int, positive: np.ndarray, rng: np.random.Generator,
                  motif: str = MOTIF) -> np.ndarray:
    """Random codes ``(n, length)``; rows where ``positive`` is true carry ``motif``."""
    codes = rng.integers(0, 4, size=(n, length), dtype=np.uint8)
    site = encode(motif)
    rc_site = (3 - site)[::-1]
    for i in np.flatnonzero(positive):
        pos = rng.integers(0, length - len(site))
        codes[i, pos:pos + len(site)] = site if rng.random() < 0.5 else rc_site
    return codes


def make_splits(folder: Path, task_type: str = "binary", n: tuple[int, int, int] = (600, 200, 200),
                length: int = 100, seed: int = 0, chunk_rows: int = 64) -> dict[str, Path]:
    """Write train/valid/test split files for ``task_type``; return their paths by split."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    offset = 0
    for split, size in zip(("train", "valid", "test"), n, strict=True):
        if task_type in ("binary", "regression"):
            pos = rng.random(size) < 0.5
            codes = planted_codes(size, length, pos, rng)
            labels = pos[:, None].astype(np.float32)
            if task_type == "regression":
                labels = labels * 2.0 + rng.normal(0, 0.1, (size, 1)).astype(np.float32)
            tasks = ["peaks"]
        else:
            a, b = rng.random(size) < 0.5, rng.random(size) < 0.5
            if task_type == "multiclass":
                cls = rng.integers(0, 3, size)
                a, b = cls == 0, cls == 1
            codes = planted_codes(size, length, a, rng, MOTIF)
            half = length // 2
            codes[:, half:] = planted_codes(size, length - half, b, rng, MOTIF2)
            if task_type == "multiclass":
                labels = np.eye(3, dtype=np.float32)[cls]
                tasks = ["gata", "other", "none"]
            else:
                labels = np.stack([a, b], 1).astype(np.float32)
                tasks = ["gata", "other"]
        path = folder / f"{split}.h5"
        write_split(path, codes, labels.astype(np.float32), np.arange(offset, offset + size),
                    tasks, task_type, chunk_rows=chunk_rows)
        offset += size
        paths[split] = path
    return paths
