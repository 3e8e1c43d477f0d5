"""Scale benchmark (a benchmark, not a test): how each stage's cost grows with the peak count.

Workload: a random genome of ``--genome-gb`` Gb (10 equal chromosomes, 60-bp lines, half the
bases lower case; generated once under ``--root``; 1 Gb by default because a 3 Gb FASTA, its
100k-peak runs and their outputs do not fit this session's time on 2 cores) and, for each
size in ``--sizes``, that many random 1-kb peaks (narrowPeak, summit in the middle). Each size
is run through the real workflow (``snakemake --cores N``) with a config of ``genome`` +
``peaks`` and:

- ``data.sequence_length: 1000``;
- ``training.epochs: 1`` (one epoch: the cost of an epoch; early stopping decides how many
  epochs a real run takes, 20-100 on the realistic suite);
- ``attribution.shards`` so that a shard holds about ``--shard-regions`` regions, and only
  shard 0 of fold 0 is computed: the throughput of one shard job, which is what a cluster
  runs in parallel.

Wall time and peak RSS of every job come from Snakemake's benchmark files (``s``,
``max_rss``). TF-MoDISco is measured apart, on synthetic contributions (random sequences, 2
motifs of 12 bp with strong contributions at 2 sites per sequence and noise elsewhere,
``--modisco-seqlets`` seqlets in all, so the seqlet count is controlled), through
``peak2motif.motifs.run_modisco`` with the schema's defaults except ``max_seqlets`` (the
bound, ``--max-seqlets``), each run in its own process for its peak RSS.

Usage::

    .venv/bin/python bench/scale.py                       # data/train/attribution + modisco
    .venv/bin/python bench/scale.py --sizes 10000,30000 --modisco-seqlets 2000,5000
    .venv/bin/python bench/scale.py --genome-gb 3 --sizes 100000 --data-only \
        --root /abs/path/resources/scale3g     # the data stage alone on a 3 Gb genome
    .venv/bin/python bench/scale.py --sizes 100000 --whole   # the whole workflow, defaults

``--whole`` runs everything at default settings (a config of ``genome`` + ``peaks`` only:
200-bp windows, early stopping, one attribution shard, every region explained, motifs,
instances, the bigWig track) and writes every job's wall s and peak RSS to
``bench/results/scale_whole.tsv``.

Writes ``bench/results/scale_stages.tsv``, ``bench/results/scale_modisco.tsv``, the fitted
lines of ``peak2motif.resources`` (``bench/results/scale_fit.tsv``) and a log-log plot
``bench/results/scale.png``; prints markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))

from extract import measure, write_genome  # noqa: E402
from recovery import run_workflow  # noqa: E402

N_CHROMS = 10
WIDTH = 1000
STAGES = {
    "prepare_regions": "data",
    "extract_sequences": "data",
    "train_model": "train (1 epoch)",
    "compute_contributions": "attribution (shard 0)",
}


def write_peaks(path: Path, n: int, chrom_len: int, seed: int) -> None:
    """``n`` random 1-kb narrowPeak records (summit in the middle), sorted."""
    rng = np.random.default_rng(seed)
    chrom = rng.integers(1, N_CHROMS + 1, size=n)
    start = rng.integers(10_000, chrom_len - 10_000 - WIDTH, size=n)
    df = pd.DataFrame({"chrom": [f"chr{c}" for c in chrom], "start": start,
                       "end": start + WIDTH}).sort_values(["chrom", "start"])
    df["name"] = [f"p{i}" for i in range(n)]
    df["score"] = 1000
    df["strand"] = "."
    df["signal"] = rng.uniform(5, 50, size=n).round(2)
    df["p"] = -1
    df["q"] = -1
    df["summit"] = WIDTH // 2
    df.to_csv(path, sep="\t", index=False, header=False)


def size_folder(work: Path, genome: Path, n: int) -> tuple[Path, Path]:
    """``work``, made, and its ``n`` random peaks (written once, seeded by ``n``)."""
    work.mkdir(parents=True, exist_ok=True)
    peaks = work / "peaks.narrowPeak"
    if not peaks.exists():
        write_peaks(peaks, n, int(genome.stat().st_size / N_CHROMS * 60 / 61), seed=n)
    return work, peaks


def run_whole(root: Path, genome: Path, n: int, cores: int) -> list[dict]:
    """The whole workflow at default settings (a config of ``genome`` + ``peaks`` only: 200-bp
    windows, early stopping, one shard, every region explained, motifs, instances, the
    track), every job's wall s and peak RSS."""
    work, peaks = size_folder(root / f"whole_n{n}", genome, n)
    name = f"whole_{n}"
    config = {"datasets": {name: {"genome": str(genome), "peaks": str(peaks)}}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    rc, seconds = run_workflow(work, work / "config.yaml", cores)
    print(f"whole workflow, {n} peaks: exit {rc}, {seconds:.0f} s wall", flush=True)
    rows = []
    for f in sorted((work / "benchmarks" / name).rglob("*.tsv")):
        b = pd.read_csv(f, sep="\t").iloc[-1]
        rows.append({"peaks": n, "job": str(f.relative_to(work / "benchmarks" / name))[:-4],
                     "s": round(float(b["s"]), 1), "max_rss_mb": round(float(b["max_rss"]))})
    rows.append({"peaks": n, "job": "(whole run, snakemake)", "s": round(seconds, 1),
                 "max_rss_mb": float("nan"), "exit": rc})
    return rows


def run_size(root: Path, genome: Path, n: int, cores: int, shard_regions: int,
             data_only: bool = False) -> tuple[Path, int]:
    work, peaks = size_folder(root / f"n{n}", genome, n)
    name = f"scale_{n}"
    # Regions = peaks + about as many negatives; a shard holds about shard_regions of them.
    shards = max(1, math.ceil(2 * n / shard_regions))
    config = {
        "datasets": {name: {"genome": str(genome), "peaks": str(peaks)}},
        "data": {"sequence_length": WIDTH},
        "training": {"epochs": 1},
        "attribution": {"shards": shards},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    target = (f"results/{name}/folds/0/sequences/train.h5" if data_only
              else f"results/{name}/folds/0/contributions/shard_0.h5")
    rc, seconds = run_workflow(work, work / "config.yaml", cores, target)
    if rc:
        raise SystemExit(f"workflow failed at {n} peaks; see {work / 'snakemake.log'}")
    print(f"{n} peaks: {seconds:.0f} s wall ({shards} shards)", flush=True)
    return work, shards


def stage_rows(work: Path, n: int, shards: int) -> list[dict]:
    """One row per job: wall s and peak RSS, and the input size its resources scale with
    (``input_mb``: the peak file, regions.tsv, the fold's split files; ``time_input_mb``
    the same, except a shard's share of the split files for compute_contributions)."""
    name = f"scale_{n}"
    bench = work / "benchmarks" / name
    regions = pd.read_csv(work / "results" / name / "sequences" / "regions.tsv", sep="\t",
                          comment="#", usecols=["kind", "split_0"])
    rows = []
    for rule, stage in STAGES.items():
        files = list(bench.glob(f"{rule}.tsv")) + list(bench.glob(f"{rule}/*.tsv"))
        for f in files:
            b = pd.read_csv(f, sep="\t").iloc[-1]
            rows.append({"peaks": n, "regions": len(regions), "rule": rule, "stage": stage,
                         "s": round(float(b["s"]), 1), "max_rss_mb": round(float(b["max_rss"]))})
    shard = work / "results" / name / "folds" / "0" / "contributions" / "shard_0.h5"
    import h5py

    explained = 0
    if shard.exists():
        with h5py.File(shard) as h5:
            explained = int(h5["codes"].shape[0])
    res = work / "results" / name
    split_mb = sum(f.stat().st_size for f in (res / "folds" / "0" / "sequences").glob("*.h5"))
    split_mb /= 2**20
    input_mb = {
        "prepare_regions": (work / "peaks.narrowPeak").stat().st_size / 2**20,
        "extract_sequences": (res / "sequences" / "regions.tsv").stat().st_size / 2**20,
        "train_model": sum((res / "folds" / "0" / "sequences" / f"{s}.h5").stat().st_size
                           for s in ("train", "valid")) / 2**20,
        "compute_contributions": split_mb,
    }
    for r in rows:
        # a shard reads and explains only its share of the split files: both are fitted on
        # the share
        share = shards if r["rule"] == "compute_contributions" else 1
        r["input_mb"] = round(input_mb[r["rule"]] / share, 3)
        r["time_input_mb"] = r["input_mb"]
        if r["rule"] == "compute_contributions":
            r["sequences"] = explained
            r["seq_per_s"] = round(explained / r["s"], 1) if explained > 0 else float("nan")
        if r["rule"] == "train_model":
            train = int((regions["split_0"] == "train").sum())
            r["sequences"] = train
            r["seq_per_s"] = round(train / r["s"], 1)
    return rows


MODISCO = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {scripts!r})
    from peak2motif.config import with_defaults
    from peak2motif.motifs import MODISCO_KEYS, run_modisco
    rng = np.random.default_rng(0)
    n, length, k = {n}, 400, 12
    codes = rng.integers(0, 4, size=(n, length))
    onehot = np.eye(4, dtype=np.float32)[codes]
    motifs = [rng.integers(0, 4, size=k) for _ in range(2)]
    hyp = rng.normal(0, 0.02, size=(n, length, 4)).astype(np.float32)
    for i in range(n):
        for j, pos in enumerate((100, 260)):
            m = motifs[(i + j) % 2]
            onehot[i, pos:pos + k] = np.eye(4, dtype=np.float32)[m]
            hyp[i, pos:pos + k] += 1.5 * np.eye(4, dtype=np.float32)[m]
    settings = with_defaults("motifs")
    options = {{key: settings[key] for key in MODISCO_KEYS if key in settings}}
    options["max_seqlets"] = {max_seqlets}
    pos, neg, _ = run_modisco(onehot, hyp, seed=0, **options)
    found = [len(p.seqlets) for p in (pos or [])]
    open({found!r}, "w").write(f"{{len(found)}}\t{{sum(found)}}")
""")


def modisco_rows(seqlets: list[int], max_seqlets: int, tmp: Path) -> list[dict]:
    rows = []
    for s in seqlets:
        script = tmp / f"modisco_{s}.py"
        found = tmp / f"modisco_{s}.found"
        script.write_text(MODISCO.format(scripts=str(REPO / "scripts"), n=s // 2,
                                         max_seqlets=max_seqlets, found=str(found)))
        wall, rss = measure([sys.executable, str(script)])
        patterns, in_patterns = (int(x) for x in found.read_text().split())
        rows.append({"planted_seqlets": s, "max_seqlets": max_seqlets, "s": round(wall, 1),
                     "max_rss_mb": round(rss), "patterns": patterns,
                     "seqlets_in_patterns": in_patterns})
        print(rows[-1], flush=True)
    return rows


def fit(stages: pd.DataFrame) -> pd.DataFrame:
    """Per rule, least-squares lines of peak RSS on input MB and of wall seconds on the
    time input (both coefficients clipped at 0; a proportion where the sizes barely vary):
    the ``COSTS`` of ``peak2motif.resources``."""
    rows = []
    for rule, d in stages.groupby("rule", sort=False):
        line = {}
        for col, xcol in (("max_rss_mb", "input_mb"), ("s", "time_input_mb")):
            x = d[xcol].to_numpy(float)
            y = d[col].to_numpy(float)
            if np.ptp(x) > 0.2 * x.mean():
                slope, icpt = np.polyfit(x, y, 1)
            else:  # too narrow a range for a line (every shard is the same size): y ~ x
                slope, icpt = float(np.mean(y / x)), 0.0
            line[col] = (max(0.0, icpt), max(0.0, slope))
        rows.append({"rule": rule, "mem_fixed_mb": round(line["max_rss_mb"][0], 1),
                     "mem_per_input_mb": round(line["max_rss_mb"][1], 3),
                     "s_fixed": round(line["s"][0], 2), "s_per_input_mb": round(line["s"][1], 4)})
    return pd.DataFrame(rows)


def plot(stages: pd.DataFrame, mod: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    per = stages.groupby(["peaks", "rule"], as_index=False)[["s", "max_rss_mb"]].max()
    for rule, d in per.groupby("rule"):
        axes[0].plot(d["peaks"], d["s"], "o-", label=rule)
    axes[0].set(xscale="log", yscale="log", xlabel="peaks (1 kb)", ylabel="wall s (per job)",
                title="workflow stages")
    axes[0].legend(fontsize=8)
    if len(mod):
        axes[1].plot(mod["planted_seqlets"], mod["s"], "o-", label="wall s")
        axes[1].plot(mod["planted_seqlets"], mod["max_rss_mb"], "s--", label="peak RSS MB")
        axes[1].axvline(mod["max_seqlets"].iloc[0], color="grey", lw=0.8)
        axes[1].set(xscale="log", yscale="log", xlabel="seqlets in the input",
                    title="TF-MoDISco-lite (grey: max_seqlets per sign)")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--genome-gb", type=float, default=1.0)
    ap.add_argument("--sizes", default="10000,30000,100000")
    ap.add_argument("--shard-regions", default="2000",
                    help="regions per attribution shard: one value, or one per size")
    ap.add_argument("--modisco-seqlets", default="2000,5000,10000")
    ap.add_argument("--max-seqlets", type=int, default=20000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--root", default=str(REPO / "resources" / "scale"))
    ap.add_argument("--skip-workflow", action="store_true")
    ap.add_argument("--whole", action="store_true",
                    help="run the whole workflow at default settings at each size and write "
                         "scale_whole.tsv (every job's time and memory); nothing else")
    ap.add_argument("--data-only", action="store_true",
                    help="run only the data stage (regions and split files) and write "
                         "scale_data_<G>gb.tsv; no training, attribution, fit or plot")
    args = ap.parse_args()

    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stages = pd.DataFrame()
    if not args.skip_workflow:
        genome = root / "genome.fa"
        chrom_len = int(args.genome_gb * 1e9 / N_CHROMS)
        if not Path(f"{genome}.fai").exists():
            t0 = time.perf_counter()
            write_genome(genome, N_CHROMS, chrom_len)
            print(f"genome {args.genome_gb} Gb written in {time.perf_counter() - t0:.0f} s")
        rows = []
        sizes = [int(s) for s in args.sizes.split(",")]
        if args.whole:
            for n in sizes:
                rows += run_whole(root, genome, n, args.cores)
            whole = pd.DataFrame(rows)
            whole.to_csv(out / "scale_whole.tsv", sep="\t", index=False)
            print(whole.to_markdown(index=False))
            return
        per_shard = [int(s) for s in args.shard_regions.split(",")]
        per_shard = per_shard * len(sizes) if len(per_shard) == 1 else per_shard
        for n, shard_regions in zip(sizes, per_shard, strict=True):
            work, shards = run_size(root, genome, n, args.cores, shard_regions, args.data_only)
            rows += stage_rows(work, n, shards)
        stages = pd.DataFrame(rows)
        if args.data_only:
            data = stages[stages["stage"] == "data"]
            data.to_csv(out / f"scale_data_{args.genome_gb:g}gb.tsv", sep="\t", index=False)
            total = data.groupby("peaks").agg(s=("s", "sum"), max_rss_mb=("max_rss_mb", "max"))
            print(data.to_markdown(index=False))
            print(f"data stage, {args.genome_gb:g} Gb genome:\n{total.to_markdown()}")
            return
        stages.to_csv(out / "scale_stages.tsv", sep="\t", index=False)
        print(stages.to_markdown(index=False))
    elif (out / "scale_stages.tsv").exists():
        stages = pd.read_csv(out / "scale_stages.tsv", sep="\t")
    mod = pd.DataFrame()
    if args.modisco_seqlets:
        mod = pd.DataFrame(modisco_rows([int(s) for s in args.modisco_seqlets.split(",")],
                                        args.max_seqlets, root))
        mod.to_csv(out / "scale_modisco.tsv", sep="\t", index=False)
        print(mod.to_markdown(index=False))
    elif (out / "scale_modisco.tsv").exists():
        mod = pd.read_csv(out / "scale_modisco.tsv", sep="\t")
    if len(stages):
        costs = fit(stages)
        costs.to_csv(out / "scale_fit.tsv", sep="\t", index=False)
        print(costs.to_markdown(index=False))
        plot(stages, mod, out / "scale.png")


if __name__ == "__main__":
    main()
