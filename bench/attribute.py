"""Benchmark: sequences/s of our DeepLIFT vs shap DeepExplainer vs gradient x input.

Same model (the default-like architecture: Conv1D valid, BatchNormalization, ReLU,
AveragePooling1D, Dropout, Flatten, Dense, sigmoid Activation), same sequences, same
10 dinucleotide-shuffled references per sequence (DeepLIFT and shap), same run.
Gradient x input needs no reference. DeepLIFT runs in its child process; its time is
measured there (conversion excluded and reported separately), as the workflow uses it.

    .venv/bin/python bench/attribute.py [--n 200] [--length 200] [--refs 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def build_model(length: int, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((length, 4)),
        keras.layers.Conv1D(64, 19, padding="valid"),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"),
        keras.layers.AveragePooling1D(8),
        keras.layers.Dropout(0.2),
        keras.layers.Flatten(),
        keras.layers.Dense(32),
        keras.layers.Activation("relu"),
        keras.layers.Dense(1),
        keras.layers.Activation("sigmoid"),
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--refs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128, help="DeepLIFT pairs per call")
    ap.add_argument("--mode", default="GenomicsDefault")
    args = ap.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from peak2motif import checks
    from peak2motif.attribution import dinuc_shuffle_codes
    from peak2motif.deeplift_compat import run_deeplift
    from peak2motif.sequences import one_hot

    codes = np.random.default_rng(0).integers(0, 4, (args.n, args.length)).astype(np.uint8)
    t0 = time.perf_counter()
    ref_codes = dinuc_shuffle_codes(codes, args.refs, seed=0)
    t_shuffle = time.perf_counter() - t0
    x, refs = one_hot(codes), one_hot(ref_codes)
    model = build_model(args.length)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "model.h5")
        model.save(path)
        t0 = time.perf_counter()
        out = run_deeplift(path, codes, ref_codes=ref_codes, threads=args.threads,
                           mode=args.mode, batch_size=args.batch_size)
        wall = time.perf_counter() - t0
    rows.append((f"deeplift (ours, {args.mode})", out["score_seconds"],
                 f"+{out['convert_seconds']:.1f} s conversion, {wall:.1f} s with child start"))

    checks.shap_contributions(model, x[:2], refs[:2])  # warm up graph building
    t0 = time.perf_counter()
    phi = checks.shap_contributions(model, x, refs)
    rows.append(("shap DeepExplainer (callable refs)", time.perf_counter() - t0, ""))

    lm = checks.logit_model(model)

    @tf.function
    def grad_x_input(batch):
        with tf.GradientTape() as tape:
            tape.watch(batch)
            y = lm(batch, training=False)[:, 0]
        return tape.gradient(y, batch) * batch

    grad_x_input(tf.constant(x[:2]))
    t0 = time.perf_counter()
    for s in range(0, len(x), 256):
        grad_x_input(tf.constant(x[s : s + 256])).numpy()
    rows.append(("gradient x input (no reference)", time.perf_counter() - t0, ""))

    actual = (out["hypothetical"] * x).sum(-1)
    r = checks.correlation(actual, phi.sum(-1))
    shap_rate = args.n / rows[1][1]
    print(f"{args.n} sequences x {args.length} bp, {args.refs} dinucleotide-shuffled references "
          f"(shuffling took {t_shuffle:.2f} s), {args.threads} threads, "
          f"DeepLIFT batch {args.batch_size} pairs")
    print(f"{'method':40s} {'seconds':>8s} {'seq/s':>8s} {'vs shap':>8s}")
    for name, sec, note in rows:
        rate = args.n / sec
        print(f"{name:40s} {sec:8.2f} {rate:8.0f} {rate / shap_rate:7.2f}x  {note}")
    print(f"per-position correlation deeplift ({args.mode}) vs shap: {r:.4f}")


if __name__ == "__main__":
    main()
