"""Benchmark: references by dinucleotide shuffle, batched (ours) against deeplift's per sequence.

The baseline is what a user of deeplift (or of the tools built on it) runs:
``deeplift.dinuc_shuffle`` on each N-free run of each sequence with its own ``RandomState``,
which walks every shuffle base by base in Python. Ours is ``peak2motif.sequences.
dinuc_shuffles``, the same arrays (checked here on every run). Peak memory is the rise of the
process's maximum RSS (the output included) in a fresh child process per measurement.

    .venv/bin/python bench/shuffle.py [--sequences 2000] [--shuffles 10] [--lengths 200,1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def measure(which: str, n_seqs: int, length: int, shuffles: int) -> dict:
    """Seconds and MiB of one way of making the references, in this process."""
    import resource
    import time

    import numpy as np
    from deeplift.dinuc_shuffle import dinuc_shuffle
    from peak2motif.sequences import _runs, codes_from_one_hot, dinuc_shuffles, one_hot

    codes = np.random.default_rng(0).integers(0, 4, (n_seqs, length)).astype(np.uint8)
    codes[:, length // 4: length // 4 + 10] = 4  # an N block: two runs per sequence
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if which == "ours":
        out = dinuc_shuffles(codes, (np.random.RandomState(i) for i in range(n_seqs)), shuffles)
    else:
        out = np.repeat(codes[:, None], shuffles, axis=1)
        for i, row in enumerate(codes):
            rng = np.random.RandomState(i)
            for a, b in _runs(row):
                shuffled = np.asarray(dinuc_shuffle(one_hot(row[a:b]), shuffles, rng))
                out[i, :, a:b] = codes_from_one_hot(shuffled.reshape(shuffles, b - a, 4))
    seconds = time.perf_counter() - t0
    rise = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    return {"seconds": seconds, "mib": rise, "out_mib": out.nbytes / 2**20,
            "digest": int(out.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=2000)
    ap.add_argument("--shuffles", type=int, default=10)
    ap.add_argument("--lengths", default="200,1000")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # internal: which length n
    args = ap.parse_args()
    if args.one:
        which, length, n = args.one
        print(json.dumps(measure(which, int(n), int(length), args.shuffles)))
        return
    print(f"{args.sequences} sequences, {args.shuffles} shuffles each, an N block in each")
    print(f"{'length':>7s} {'deeplift s':>11s} {'ours s':>8s} {'speed-up':>9s} "
          f"{'deeplift MiB':>13s} {'ours MiB':>9s} {'output MiB':>11s}  (MiB: rise of peak RSS)")
    for length in (int(x) for x in args.lengths.split(",")):
        res = {}
        for which in ("deeplift", "ours"):
            out = subprocess.run([sys.executable, __file__, "--shuffles", str(args.shuffles),
                                  "--one", which, str(length), str(args.sequences)],
                                 check=True, capture_output=True, text=True).stdout
            res[which] = json.loads(out.strip().splitlines()[-1])
        assert res["ours"]["digest"] == res["deeplift"]["digest"], "the shuffles differ"
        d, o = res["deeplift"], res["ours"]
        print(f"{length:7d} {d['seconds']:11.2f} {o['seconds']:8.2f} "
              f"{d['seconds'] / o['seconds']:8.1f}x {d['mib']:13.0f} {o['mib']:9.0f} "
              f"{o['out_mib']:11.0f}")


if __name__ == "__main__":
    main()
