"""Tiny seeded models and data sets for the attribution tests (a planted GATA motif)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from peak2motif.sequences import encode, one_hot
from peak2motif.splitfiles import write_split

MOTIF = "AGATAAGG"


def toy_data(n: int = 400, length: int = 100, seed: int = 0):
    """Random sequences; half carry MOTIF at a random place. Returns codes, labels, motif starts."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, length)).astype(np.uint8)
    labels = np.zeros((n, 1), np.float32)
    starts = np.full(n, -1)
    motif = encode(MOTIF)
    for i in range(0, n, 2):
        s = int(rng.integers(10, length - 10 - len(MOTIF)))
        codes[i, s : s + len(MOTIF)] = motif
        labels[i] = 1
        starts[i] = s
    return codes, labels, starts


def toy_model(length: int = 100, pooling: str = "average", layers: list | None = None,
              seed: int = 0, train: bool = True, n: int = 400, outputs: int = 1):
    """A small Sequential CNN ending in a separate sigmoid Activation, trained a few epochs
    (with ``outputs`` > 1 every output learns the same motif, a multi-task stand-in)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(seed)
    pool = (keras.layers.AveragePooling1D(4) if pooling == "average"
            else keras.layers.MaxPooling1D(4))
    body = layers if layers is not None else [
        keras.layers.Conv1D(8, 9, padding="valid"),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"),
        pool,
        keras.layers.Dropout(0.1),
        keras.layers.Flatten(),
        keras.layers.Dense(outputs, name="logits"),
    ]
    model = keras.Sequential([keras.Input((length, 4)), *body,
                              keras.layers.Activation("sigmoid", name="output")])
    if train:
        codes, labels, _ = toy_data(n, length, seed)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
        model.fit(one_hot(codes), np.repeat(labels, outputs, 1), epochs=8, batch_size=32,
                  verbose=0)
    return model


def write_toy_dataset(folder: Path, n: int = 200, length: int = 100, seed: int = 1,
                      tasks: tuple[str, ...] = ("peaks",), n_chars: int = 0) -> dict:
    """Split files, regions.tsv and planted.tsv for a toy dataset in ``folder``.

    Region i lies on chr1 at 1000*i; the planted table gives the motif positions. With
    several ``tasks`` every motif-carrying region is positive for all of them except one in
    three for the last task. ``n_chars`` N bases are written into every sequence.
    """
    folder.mkdir(parents=True, exist_ok=True)
    codes, labels, starts = toy_data(n, length, seed)
    if n_chars:
        codes[:, 2:2 + n_chars] = 4
    labels = np.repeat(labels, len(tasks), 1)
    if len(tasks) > 1:
        labels[::3, -1] = 0
    regions = pd.DataFrame({
        "chrom": "chr1", "start": np.arange(n) * 1000, "end": np.arange(n) * 1000 + length,
        "name": [f"r{i}" for i in range(n)],
        "kind": np.where(labels.any(1), "peak", "background"), "unit": "chr1",
        "split_0": "test"})
    for j, t in enumerate(tasks):
        regions[t] = labels[:, j]
    regions.to_csv(folder / "regions.tsv", sep="\t", index=False)
    paths = {}
    thirds = np.array_split(np.arange(n), 3)
    for name, idx in zip(("train", "valid", "test"), thirds, strict=True):
        paths[name] = str(folder / f"{name}.h5")
        write_split(paths[name], codes[idx], labels[idx], idx.astype(np.int64), list(tasks),
                    "binary" if len(tasks) == 1 else "multitask")
    pos = starts >= 0
    planted = pd.DataFrame({
        "chrom": "chr1", "start": regions["start"][pos] + starts[pos],
        "end": regions["start"][pos] + starts[pos] + len(MOTIF), "strand": "+",
        "motif_id": "toy", "motif_name": "GATA", "peak": regions["name"][pos],
    })
    planted.to_csv(folder / "planted.tsv", sep="\t", index=False)
    with open(folder / "genome.fa.fai", "w") as fh:
        fh.write(f"chr1\t{n * 1000 + 5000}\t6\t60\t61\nchr2\t5000\t0\t60\t61\n")
    return {"splits": paths, "regions": str(folder / "regions.tsv"),
            "planted": str(folder / "planted.tsv"), "codes": codes, "labels": labels}
