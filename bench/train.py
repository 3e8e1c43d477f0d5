"""Training throughput: streaming the split file from disk vs the same data in memory.

Usage: .venv/bin/python bench/train.py [--n 20000] [--length 200] [--epochs 3] [--threads 2]

Both runs train the default model (config defaults) with the same batch size and reverse-
complement augmentation. The in-memory run (``from_tensor_slices``) is the ceiling; the
ratio streamed / in-memory sequences per second is what matters (target >= 0.95). The first
epoch (graph tracing) is excluded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from peak2motif.config import with_defaults  # noqa: E402
from peak2motif.model import build_model, compile_model  # noqa: E402
from peak2motif.splitfiles import write_split  # noqa: E402
from peak2motif.train import configure_runtime, memory_dataset, stream_dataset  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.t0]


def throughput(ds, n, model_cfg, training_cfg, length, epochs) -> float:
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(model_cfg, length, 1, "binary"), training_cfg,
                          "binary", 1)
    timer = EpochTimer()
    model.fit(ds, epochs=epochs, callbacks=[timer], verbose=0)
    return n / float(np.median(timer.times[1:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    configure_runtime(args.threads)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (args.n, args.length), dtype=np.uint8)
    labels = (rng.random((args.n, 1)) < 0.5).astype(np.float32)
    model_cfg, training_cfg = with_defaults("model"), with_defaults("training")
    bs = training_cfg["batch_size"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.h5"
        write_split(path, codes, labels, np.arange(args.n), ["peaks"], "binary",
                    chunk_rows=4096)
        results = {"disk": [], "memory": []}
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            results["disk"].append(throughput(
                stream_dataset(path, bs, shuffle=True, augment_rc=True), args.n, model_cfg,
                training_cfg, args.length, args.epochs))
            results["memory"].append(throughput(
                memory_dataset(codes, labels, bs, augment_rc=True), args.n, model_cfg,
                training_cfg, args.length, args.epochs))
    disk, mem = np.median(results["disk"]), np.median(results["memory"])
    print(f"sequences: {args.n} x {args.length} bp, batch {bs}, threads {args.threads}")
    print(f"{'pipeline':<28}{'seq/s (median)':>16}{'runs':>30}")
    for label, key, value in (("HDF5 streamed (from disk)", "disk", disk),
                              ("in-memory tensors", "memory", mem)):
        runs = str([round(x) for x in results[key]])
        print(f"{label:<28}{value:>16.0f}{runs:>30}")
    print(f"ratio streamed / in-memory: {disk / mem:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
