"""Benchmark: attribution methods side by side, in one run, with ratios.

1. The default model of the schema (``peak2motif.model.build_model`` with
   ``with_defaults("model")``) at 200 bp, untrained (speed does not depend on the weights):
   - the ceiling: gradient x input, one compiled gradient pass at a batch of 1,280, and the
     forward pass alone;
   - native DeepLIFT (``peak2motif.explain``, method ``deeplift``), 10 dinucleotide-shuffled
     references per sequence, hypothetical contributions included: its compiled step against
     the ceiling per (sequence, reference) pair (best of interleaved repeats, so that both see
     the same machine load), its fixed cost per job (model load + clone + trace + first call;
     TF import reported apart) and end-to-end times at ``--small`` and ``--large`` sequences;
   - shap 0.51 DeepExplainer (``data=callable`` per-sequence references, no additivity
     check) and the deeplift 0.6.13 package (child process: start, conversion, scoring) on
     the same sequences and references, end to end.
2. A BPNet-like model (1 kb, a wide conv, ``--dilated`` dilated residual convs, global
   average pooling): sequences/s of native DeepLIFT, gradient x input and shap (which has no
   rule for TF's dilated convolution).
3. Integrated gradients (64 steps) on the schema's cnn_lstm at 200 bp.

    .venv/bin/python bench/attribute.py [--small 500] [--large 20000] [--refs 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def best_seconds(fns: dict, repeats: int) -> dict:
    """Best time of one call of each function, calls interleaved ``repeats`` times."""
    for fn in fns.values():
        fn()  # compile / warm up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def ceiling_functions(logits, onehot: np.ndarray, batch: int):
    """Compiled gradient x input and forward pass of ``logits`` at ``batch`` sequences."""
    import tensorflow as tf

    spec = [tf.TensorSpec((batch,) + onehot.shape[1:], tf.float32)]

    @tf.function(input_signature=spec)
    def grad_x_input(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(logits(x, training=False)[:, 0])
        return tape.gradient(total, x) * x

    @tf.function(input_signature=spec)
    def forward(x):
        return logits(x, training=False)[:, 0]

    x = tf.constant(np.resize(onehot, (batch,) + onehot.shape[1:]))
    return (lambda: grad_x_input(x).numpy()), (lambda: forward(x).numpy())


def fresh_job(folder: str, threads: int) -> dict:
    """Run :func:`job_main` in a new process; its timings."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--job", folder, "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def prepare_job(folder: str, n: int, r: int) -> None:
    """Write the default model (``model.h5``) and ``n`` sequences with ``r`` references each
    (``job.npz``) for :func:`job_main`; run in a child (:func:`fresh_jobs`)."""
    from peak2motif.attribution import shuffled_references
    from peak2motif.config import with_defaults
    from peak2motif.model import build_model
    from peak2motif.sequences import one_hot

    codes = np.random.default_rng(0).integers(0, 4, (n, 200)).astype(np.uint8)
    refs = shuffled_references(codes, np.arange(n), r, seed=0)
    build_model(with_defaults("model"), 200, 1, "binary", seed=0).save(Path(folder, "model.h5"))
    np.savez(Path(folder, "job.npz"), onehot=one_hot(codes), refs=one_hot(refs))


def fresh_jobs(args) -> tuple[str, list[dict]]:
    """A job's first chunk, each in a fresh process, started as Snakemake starts a job.

    Started before this process computes anything with TensorFlow: measured here, a child
    of a process that had run TF computations took 0.1-0.4 s longer in its first call (the
    same child started from a shell, or from a parent that had only imported TF, did not),
    and Snakemake, which starts the attribution job, runs no TF.
    """
    import subprocess

    tmp = tempfile.mkdtemp(prefix="bench_attribute_job_")
    subprocess.run([sys.executable, __file__, "--prepare-job", tmp, "--small", str(args.small),
                    "--refs", str(args.refs)], check=True, capture_output=True)
    return tmp, [fresh_job(tmp, args.threads) for _ in range(args.fresh_jobs)]


def job_main(folder: str, threads: int) -> None:
    """What an attribution job does first: import, load the model, explain (two chunks)."""
    import json

    t0 = time.perf_counter()
    import keras
    import tensorflow as tf
    from peak2motif.explain import explain

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    data = np.load(Path(folder, "job.npz"))
    t1 = time.perf_counter()
    model = keras.models.load_model(Path(folder, "model.h5"), compile=False)
    t2 = time.perf_counter()
    out = explain(model, data["onehot"], data["refs"])
    t3 = time.perf_counter()
    again = explain(model, data["onehot"], data["refs"])  # the job's next chunk
    t4 = time.perf_counter()
    assert again.diagnostics["prepared_reused"]
    print(json.dumps({"import": t1 - t0, "load": t2 - t1, "total": t3 - t1,
                      "setup": out.diagnostics["setup_seconds"],
                      "first": out.diagnostics["first_call_seconds"], "second_chunk": t4 - t3}))


def default_model_section(args, tf_import: float, fresh: tuple[str, list[dict]]) -> None:
    import keras
    from peak2motif import checks
    from peak2motif.attribution import shuffled_references
    from peak2motif.deeplift_compat import run_deeplift
    from peak2motif.explain import explain, logit_model, rescale
    from peak2motif.sequences import one_hot

    length, r, n_large = 200, args.refs, args.large
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (n_large, length)).astype(np.uint8)
    t0 = time.perf_counter()
    ref_codes = shuffled_references(codes, np.arange(len(codes)), r, seed=0)
    t_shuffle = time.perf_counter() - t0
    onehot, refs = one_hot(codes), one_hot(ref_codes)
    folder, jobs = fresh
    h5 = Path(folder, "model.h5")  # the default model, written for the fresh jobs
    model = keras.models.load_model(h5, compile=False)

    # --- the ceiling and the compiled DeepLIFT step, interleaved --------------------------
    logits = logit_model(model)
    batch = 1280
    grad_fn, fwd_fn = ceiling_functions(logits, onehot, batch)
    b = 1408 // (r + 1)
    steps = {fuse: rescale.deeplift_step(rescale.rescale_clone(logits, r, band=1e-2, fuse=fuse),
                                         r, 0, b, length) for fuse in (True, False)}
    import tensorflow as tf

    sx, sr = tf.constant(onehot[:b]), tf.constant(refs[:b].reshape(b * r, length, 4))
    best = best_seconds({"grad": grad_fn, "forward": fwd_fn,
                         "deeplift": lambda: steps[True](sx, sr)[0].numpy(),
                         "unfused": lambda: steps[False](sx, sr)[0].numpy()}, args.repeats)
    ceiling = batch / best["grad"]
    forward = batch / best["forward"]
    pairs = b * r / best["deeplift"]
    rate = {True: pairs, False: b * r / best["unfused"]}
    # the same jobs again, now started from this process after its TF computations
    late = [fresh_job(folder, args.threads) for _ in range(args.fresh_jobs)]

    # --- end to end -------------------------------------------------------------------------
    rows = []
    for name, n, fuse in (("native deeplift", args.small, True),
                          ("native, fuse=False", args.small, False),
                          ("native deeplift", n_large, True)):
        t0 = time.perf_counter()
        loaded = keras.models.load_model(h5, compile=False)
        t_load = time.perf_counter() - t0
        out = explain(loaded, onehot[:n], refs[:n], fuse=fuse)
        wall = time.perf_counter() - t0
        d = out.diagnostics
        # fixed cost: what the run took beyond scoring n*r pairs at the step's steady rate
        # (measured on the small run only: on the large one, load changes over a minute
        # swamp it)
        fixed = wall - n * r / rate[fuse] if n == args.small else float("nan")
        rows.append((name, n, wall, fixed,
                     f"load {t_load:.2f} s, clone+trace {d['setup_seconds']:.2f} s, first call "
                     f"{d['first_call_seconds']:.2f} s; max |sum - delta| "
                     f"{d['summation_max_abs_error']:.1e}"))
        if n == args.small and fuse:
            native_small = out

    for n in (args.small, n_large):
        t0 = time.perf_counter()
        phi = checks.shap_contributions(model, onehot[:n], refs[:n])
        rows.append(("shap DeepExplainer", n, time.perf_counter() - t0, float("nan"),
                     "callable references, check_additivity=False"))
        if n == args.small:
            actual = (native_small.hypothetical * onehot[: args.small]).sum(-1)
            shap_diff = float(np.abs(actual - phi.sum(-1)).max())

    for n in (args.small, n_large):
        t0 = time.perf_counter()
        res = run_deeplift(h5, codes[:n], ref_codes=ref_codes[:n], mode=args.package_mode,
                           threads=args.threads)
        wall = time.perf_counter() - t0
        rows.append(("deeplift package", n, wall, wall - res["score_seconds"],
                     f"{args.package_mode}: conversion {res['convert_seconds']:.1f} s, scoring "
                     f"{res['score_seconds']:.1f} s"))
        if n == args.small:
            package_diff = float(np.abs(res["hypothetical"] - native_small.hypothetical).max())

    print(f"\n== default model of the schema, {length} bp, {r} dinucleotide-shuffled references "
          f"(shuffles of {n_large} sequences: {t_shuffle:.1f} s), {args.threads} threads ==")
    print(f"TensorFlow + Keras import: {tf_import:.2f} s (not in any fixed cost below)")
    print(f"ceiling, gradient x input at batch {batch}: {ceiling:,.0f} passes/s; forward alone "
          f"{forward:,.0f} seq/s")
    print(f"native deeplift step ({b} sequences + {b * r} references per call): {pairs:,.0f} "
          f"pairs/s = {pairs / ceiling:.2f}x the ceiling per pair "
          f"({pairs / r:,.0f} seq/s with hypothetical contributions); without the fused "
          f"kernels (fuse=False) {rate[False]:,.0f} pairs/s = {rate[False] / ceiling:.2f}x")
    print(f"fixed cost of a job, each a fresh process, {args.small} sequences (beyond scoring "
          f"{args.small * r:,} pairs at the step's rate above; TF import apart):")
    for j in jobs:
        chunk = j["second_chunk"] - args.small * r / rate[True]
        print(f"  {j['total'] - args.small * r / rate[True]:.2f} s: load {j['load']:.2f}, "
              f"clone+trace {j['setup']:.2f}, first call (compilation) {j['first']:.2f} "
              f"(TF import {j['import']:.2f}); a second chunk of the job: {chunk:+.2f} s")
    print("  the same jobs started from this process after its TF computations (not how "
          "Snakemake starts them): " + ", ".join(
              f"{j['total'] - args.small * r / rate[True]:.2f} s" for j in late))
    print(f"{'method':22s} {'seqs':>6s} {'seconds':>8s} {'seq/s':>7s} {'fixed s':>8s}  notes")
    for name, n, wall, fixed, note in rows:
        print(f"{name:22s} {n:6d} {wall:8.1f} {n / wall:7.0f} {fixed:8.2f}  {note}")
    by = {(name, n): wall for name, n, wall, _, _ in rows}
    for n in (args.small, n_large):
        nat = by[("native deeplift", n)]
        print(f"end to end at {n}: native is {by[('shap DeepExplainer', n)] / nat:.1f}x shap and "
              f"{by[('deeplift package', n)] / nat:.1f}x the deeplift package")
    print(f"agreement at {args.small}: per-position contributions vs shap max |diff| "
          f"{shap_diff:.1e}; hypothetical vs package ({args.package_mode}) max |diff| "
          f"{package_diff:.1e}")


def bpnet_section(args) -> None:
    import tensorflow as tf
    from explain_toys import bpnet_like
    from peak2motif.attribution import shuffled_references
    from peak2motif.explain import explain, logit_model, rescale
    from peak2motif.sequences import one_hot

    length, r, n = 1000, args.refs, args.bpnet
    model = bpnet_like(length, 64, args.dilated, "gap")
    codes = np.random.default_rng(1).integers(0, 4, (n, length)).astype(np.uint8)
    onehot = one_hot(codes)
    refs = one_hot(shuffled_references(codes, np.arange(len(codes)), r, seed=1))
    logits = logit_model(model)
    batch = 128
    grad_fn, _ = ceiling_functions(logits, onehot, batch)
    b = max(1, 352 // (r + 1))
    step = rescale.deeplift_step(rescale.rescale_clone(logits, r, band=1e-2), r, 0, b, length)
    sx = tf.constant(np.resize(onehot, (b, length, 4)))
    sr = tf.constant(np.resize(refs, (b, r, length, 4)).reshape(b * r, length, 4))
    best = best_seconds({"grad": grad_fn, "deeplift": lambda: step(sx, sr)[0].numpy()},
                        max(2, args.repeats // 2))
    t0 = time.perf_counter()
    out = explain(model, onehot, refs, batch_size=352)
    wall = time.perf_counter() - t0
    ceiling = batch / best["grad"]
    pairs = b * r / best["deeplift"]
    print(f"\n== BPNet-like, {length} bp, 64 filters, {args.dilated} dilated residual convs, "
          f"global average pooling, {r} references ==")
    print(f"gradient x input: {ceiling:,.0f} seq/s; native deeplift step {pairs / r:,.0f} seq/s "
          f"({pairs:,.0f} pairs/s = {pairs / ceiling:.2f}x the ceiling per pair); end to end "
          f"{n} sequences in {wall:.1f} s ({n / wall:.0f} seq/s, max |sum - delta| "
          f"{out.diagnostics['summation_max_abs_error']:.1e})")
    return model, onehot[:2], refs[:2]


def shap_attempt(model, onehot, refs) -> str:
    """Try shap on the BPNet-like model. Run last: a failed DeepExplainer leaves its gradient
    overrides registered, and every later gradient in the process fails."""
    from peak2motif import checks

    try:
        checks.shap_contributions(model, onehot, refs)
        return "ran"
    except Exception as exc:  # shap has no rule for the ops of dilated convolutions
        return f"fails: {type(exc).__name__}: {str(exc).strip().splitlines()[-1].strip()[:90]}"


def ig_section(args) -> None:
    from peak2motif.attribution import shuffled_references
    from peak2motif.config import with_defaults
    from peak2motif.explain import explain
    from peak2motif.model import build_model
    from peak2motif.sequences import one_hot

    model = build_model(with_defaults("model", {"architecture": "cnn_lstm"}), 200, 1, "binary")
    codes = np.random.default_rng(2).integers(0, 4, (args.ig, 200)).astype(np.uint8)
    refs = one_hot(shuffled_references(codes, np.arange(len(codes)), args.refs, 2))
    out = explain(model, one_hot(codes), refs,
                  method="integrated_gradients")
    d = out.diagnostics
    print(f"\n== integrated gradients, schema cnn_lstm, 200 bp, {args.refs} references, "
          f"{d['steps']} steps ==")
    print(f"{args.ig} sequences in {d['setup_seconds'] + d['score_seconds']:.1f} s "
          f"({args.ig / d['score_seconds']:.1f} seq/s, "
          f"{args.ig * args.refs * d['steps'] / d['score_seconds']:,.0f} gradient rows/s); "
          f"completeness max {d['completeness_max_abs_error']:.1e} (bound "
          f"{d['completeness_bound']:.1e})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--large", type=int, default=20000)
    ap.add_argument("--refs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=8, help="interleaved timing repeats")
    ap.add_argument("--package-mode", default="Rescale")
    ap.add_argument("--bpnet", type=int, default=200, help="sequences for the BPNet-like model")
    ap.add_argument("--dilated", type=int, default=8)
    ap.add_argument("--ig", type=int, default=50, help="sequences for integrated gradients")
    ap.add_argument("--fresh-jobs", type=int, default=3,
                    help="fresh processes measuring a job's fixed cost")
    ap.add_argument("--sections", default="default,bpnet,ig",
                    help="comma-separated: default, bpnet, ig")
    ap.add_argument("--job", help=argparse.SUPPRESS)  # internal: one fresh job (fresh_job)
    ap.add_argument("--prepare-job", help=argparse.SUPPRESS)  # internal: its files
    args = ap.parse_args()
    if args.job:
        job_main(args.job, args.threads)
        return
    if args.prepare_job:
        prepare_job(args.prepare_job, args.small, args.refs)
        return

    t0 = time.perf_counter()
    import keras  # noqa: F401
    import tensorflow as tf

    tf_import = time.perf_counter() - t0
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    sections = args.sections.split(",")
    if "default" in sections:
        default_model_section(args, tf_import, fresh_jobs(args))
    if "bpnet" in sections:
        bpnet = bpnet_section(args)
    if "ig" in sections:
        ig_section(args)
    if "bpnet" in sections:
        print(f"\nshap DeepExplainer on the BPNet-like model: {shap_attempt(*bpnet)}")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
