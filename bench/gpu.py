"""The prepared GPU check: training and attribution throughput on the GPU, in one short run,
with the machine's own CPU measured in the same run as the baseline.

What it measures, for the schema's default model (``cnn``) and the BPNet-like trunk
(``cnn_residual``), on random sequences (speed does not depend on the data):

- training: sequences/s of ``model.fit`` on the streamed HDF5 pipeline the workflow uses
  (``peak2motif.train.stream_dataset``, reverse-complement augmentation on), the median of
  the epochs after the first (which traces and compiles);
- attribution: sequences/s of native DeepLIFT (``peak2motif.explain.explain``, 10
  dinucleotide-shuffled references per sequence, hypothetical contributions included), after
  one warm-up call.

Each figure is taken on ``/GPU:0`` and on ``/CPU:0`` with all of the machine's cores (the
best a user without a GPU could do on that machine), and the ratio GPU / CPU is printed.
On a machine without a GPU it prints the CPU rows and says so; it never invents a GPU row.

    .venv/bin/python bench/gpu.py [--n-train 20000] [--n-explain 4000] [--epochs 3]
                                  [--out bench/results/gpu.tsv]

It needs a GPU build of TensorFlow 2.21 (``tensorflow[and-cuda]==2.21.0`` in place of
``tensorflow-cpu``). Budget: about 2-4 minutes on one H100-class GPU with 16 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from peak2motif.attribution import shuffled_references  # noqa: E402
from peak2motif.config import with_defaults  # noqa: E402
from peak2motif.explain import explain  # noqa: E402
from peak2motif.model import build_model, compile_model  # noqa: E402
from peak2motif.sequences import one_hot  # noqa: E402
from peak2motif.splitfiles import write_split  # noqa: E402
from peak2motif.train import stream_dataset  # noqa: E402

LENGTH = 200
ARCHITECTURES = ("cnn", "cnn_residual")


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


def model_for(architecture: str):
    cfg = with_defaults("model", {"architecture": architecture})
    keras.utils.set_random_seed(0)
    return compile_model(build_model(cfg, LENGTH, 1, "binary"), with_defaults("training"),
                         "binary", 1)


def training_rate(device: str, architecture: str, split: Path, n: int, epochs: int) -> float:
    """Sequences per second of fit() on ``device`` (median of the epochs after the first)."""
    batch = with_defaults("training")["batch_size"]
    with tf.device(device):
        model = model_for(architecture)
        timer = EpochTimer()
        model.fit(stream_dataset(split, batch, shuffle=True, augment_rc=True), epochs=epochs,
                  callbacks=[timer], verbose=0)
    return n / float(np.median(timer.times[1:]))


def attribution_rate(device: str, architecture: str, onehot: np.ndarray,
                     refs: np.ndarray) -> float:
    """Sequences per second of native DeepLIFT on ``device`` (after one warm-up call)."""
    with tf.device(device):
        model = model_for(architecture)
        explain(model, onehot[:256], refs[:256])
        t0 = time.perf_counter()
        explain(model, onehot, refs)
    return len(onehot) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-explain", type=int, default=4000)
    ap.add_argument("--refs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "gpu.tsv"))
    args = ap.parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    devices = (["/GPU:0"] if gpus else []) + ["/CPU:0"]
    name = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
            if gpus else "none")
    print(f"TensorFlow {tf.__version__}; GPU: {name}; CPU cores: {os.cpu_count()}", flush=True)
    if not gpus:
        print("No GPU visible to TensorFlow: CPU rows only (no GPU figure is made up).")
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (args.n_train, LENGTH), dtype=np.uint8)
    labels = (rng.random((args.n_train, 1)) < 0.5).astype(np.float32)
    explain_codes = codes[: args.n_explain]
    onehot = one_hot(explain_codes)
    refs = one_hot(shuffled_references(explain_codes, np.arange(len(explain_codes)),
                                       args.refs, seed=0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "train.h5"
        write_split(split, codes, labels, np.arange(args.n_train), ["peaks"], "binary",
                    chunk_rows=4096)
        for arch in ARCHITECTURES:
            for device in devices:
                train = training_rate(device, arch, split, args.n_train, args.epochs)
                attr = attribution_rate(device, arch, onehot, refs)
                rows.append({"architecture": arch, "device": device,
                             "train_seq_per_s": round(train), "deeplift_seq_per_s": round(attr)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.insert(0, "gpu", name)
    if gpus:
        for arch in ARCHITECTURES:
            a = table[table.architecture == arch].set_index("device")
            train = a.train_seq_per_s["/GPU:0"] / a.train_seq_per_s["/CPU:0"]
            attr = a.deeplift_seq_per_s["/GPU:0"] / a.deeplift_seq_per_s["/CPU:0"]
            print(f"{arch}: training GPU/CPU {train:.1f}x, DeepLIFT GPU/CPU {attr:.1f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, sep="\t", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
