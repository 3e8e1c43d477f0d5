"""Margins of the figures the end-to-end tests assert, across seeds and CPU kernels.

A figure a test asserts needs a margin measured across seeds and machines. Machines of one
kind differ in their CPU (with or without AVX-512 or AMX), and the libraries pick their
kernels by CPU: oneDNN in TensorFlow, OpenBLAS in numpy, LLVM in numba. Different kernels sum
in a different order, and training amplifies the last-bit differences into different weights
(``bench/margins.py --kernels-only`` shows it on a small training run). So each variant here
is a training seed and a set of kernels: ``native`` (what this CPU picks) or ``avx2`` (every
library held to AVX2 kernels, which is what a machine without AVX-512 runs).

Cases:

- ``tiny``: the CI config ``tests/configs/tiny.yaml`` (simulated genome, two folds, two
  shards, a VCF) through the whole workflow; the figures of test_motif_stage,
  test_attribution_stage, test_training_stage and test_variant_stage;
- ``realistic``: ``worm_ci_1200`` of the recovery suite at default settings (test_realistic),
  judged by ``bench/recovery.py``.

Usage::

    .venv/bin/python bench/margins.py --cases tiny,realistic --seeds 0,1,2 --kernels native,avx2

Results go to ``bench/results/margins.tsv`` (one row per case, seed and kernels), printed with
the minimum of each column. Runs live under ``resources/margins/`` (not in git).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

RECOVERY = REPO / "resources" / "recovery"  # the suite's case folders (built once, shared)

# Environment that holds each library to AVX2 kernels on any x86-64 CPU that has AVX2.
KERNELS = {
    "native": {},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
             "NUMBA_CPU_NAME": "haswell"},
}


def tiny_figures(work: Path) -> dict[str, float]:
    """The figures the tiny-run tests assert, read from what the workflow wrote."""
    from peak2motif.motifs import overlap_planted
    from pyjaspar import jaspardb
    from sklearn.metrics import roc_auc_score

    res = work / "results" / "tiny"
    out: dict[str, float] = {}
    metrics = pd.read_csv(res / "evaluation/metrics.tsv", sep="\t", dtype={"fold": str})
    pooled = metrics[metrics.fold == "pooled"].set_index("metric").value
    out["test_auroc"] = float(pooled["auroc"])
    out["auprc_minus_positive_fraction"] = float(pooled["auprc"] - pooled["positive_fraction"])
    checks = pd.read_csv(res / "contributions/checks.tsv", sep="\t").set_index("check")["value"]
    for key in ("interpretability_auroc", "shap_correlation", "summation_to_delta_max_abs_error"):
        out[key] = float(checks[key])
    table = pd.read_csv(res / "motifs/motifs.tsv", sep="\t")
    planted = pd.read_csv(work / "resources/tiny/planted.tsv", sep="\t")
    db = jaspardb(release="JASPAR2024")
    for mid in sorted(planted["motif_id"].unique()):
        m = db.fetch_motif_by_id(mid)
        rows = table[((table["match_name"].str.upper() == m.name.upper())
                      | (table["match_family"] == "; ".join(m.tf_family)))
                     & (table["qvalue"] < 0.05)]
        out[f"on_sites_{m.name}"] = (float(rows["seqlet_fraction_in_planted"].max())
                                     if len(rows) else 0.0)
        out[f"enrichment_{m.name}"] = float(rows["enrichment"].max()) if len(rows) else 0.0
    bed = pd.read_csv(res / "motifs/instances/all.bed.gz", sep="\t", header=None,
                      names=["chrom", "start", "end", "name", "score", "strand", "peak"])
    hit, _ = overlap_planted(bed[["chrom", "start", "end"]], planted)
    out["instances_on_sites"] = float(hit.mean()) if len(hit) else 0.0
    variants = pd.read_csv(res / "variants/variants.tsv", sep="\t")
    breaks = variants["id"].str.startswith("site_")
    out["variant_auc"] = float(roc_auc_score(breaks, -variants["lfc"]))
    out["variant_motif_hit"] = float(variants.loc[breaks, "motif_hit"].notna().mean())
    return out


def run_tiny(root: Path, seed: int, kernels: str) -> dict:
    work = root / f"tiny_seed{seed}_{kernels}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cfg = yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text())
    cfg["training"]["seed"] = seed
    (work / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    from recovery import run_workflow

    rc, wall = run_workflow(work, work / "tiny.yaml", 2, env=KERNELS[kernels])
    row = {"case": "tiny", "seed": seed, "kernels": kernels, "exit": rc, "wall_s": round(wall)}
    return row | (tiny_figures(work) if rc == 0 else {})


def run_realistic(root: Path, seed: int, kernels: str) -> dict:
    import recovery
    import recovery_data

    case = recovery_data.BY_NAME["worm_ci_1200"]
    runs = root / f"realistic_seed{seed}_{kernels}"
    if runs.exists():
        shutil.rmtree(runs)
    work, wall, rc = recovery.run_case(case, RECOVERY, runs, {"training": {"seed": seed}}, 2,
                                       env=KERNELS[kernels])
    row = {"case": "realistic", "seed": seed, "kernels": kernels, "exit": rc,
           "wall_s": round(wall)}
    if rc == 0:
        case_dir = RECOVERY / case.name
        meta = yaml.safe_load((case_dir / "case.yaml").read_text())
        j = recovery.judge(work, case_dir, meta)
        row |= {"test_auroc": j["test_auroc"], "interpretability_auroc": j["interp_auroc"],
                "recovered": j["recovered"], "off_target": j["off_target"]}
    return row


def kernels_only(root: Path) -> pd.DataFrame:
    """Train one small model under each kernel set; the largest weight difference between them."""
    sys.path.insert(0, str(REPO / "tests"))
    from peak2motif.config import with_defaults
    from training_fixtures import make_splits, read_run, run_in_subprocess

    splits = make_splits(root / "kernels_data", n=(1200, 300, 300), length=200)
    spec = {"train": splits["train"], "valid": splits["valid"],
            "model": with_defaults("model", {}), "checkpoint_dir": None,
            "training": with_defaults("training", {"epochs": 4,
                                                   "early_stopping": {"enabled": False}})}
    runs = {}
    saved = dict(os.environ)
    for name, threads in (("native", 1), ("native", 2), ("avx2", 1), ("native", 1)):
        label = f"{name}_t{threads}"
        os.environ.update(KERNELS[name])
        out = root / f"kernels_{label}_{len(runs)}"
        proc = run_in_subprocess({**spec, "threads": threads, "out": out})
        os.environ.clear()
        os.environ.update(saved)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[f"{label} (run {len(runs) + 1})"] = read_run(out)[0]
    ref = next(iter(runs.values()))
    return pd.DataFrame([{"run": k, "max_abs_weight_difference_vs_run_1": max(
        float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(v, ref, strict=True)
        if a.dtype.kind == "f")} for k, v in runs.items()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="tiny,realistic")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--kernels", default="native,avx2")
    ap.add_argument("--root", default=str(REPO / "resources" / "margins"))
    ap.add_argument("--kernels-only", action="store_true",
                    help="only show that kernels and thread counts change trained weights")
    args = ap.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    if args.kernels_only:
        print(kernels_only(root).to_markdown(index=False))
        return
    out = REPO / "bench" / "results" / "margins.tsv"
    out.parent.mkdir(exist_ok=True)
    # Rows of earlier invocations are kept, except those this one reruns (same case, seed
    # and kernels), so the matrix can be filled in several runs.
    earlier = pd.read_csv(out, sep="\t") if out.exists() else pd.DataFrame()
    rows = []

    def save():
        df = pd.DataFrame(rows)
        if len(earlier):
            done = set(zip(df["case"], df["seed"], df["kernels"], strict=True))
            keep = [(c, s, k) not in done for c, s, k in
                    zip(earlier["case"], earlier["seed"], earlier["kernels"], strict=True)]
            df = pd.concat([earlier[keep], df], ignore_index=True)
        df.to_csv(out, sep="\t", index=False)
        return df

    for case in args.cases.split(","):
        for kernels in args.kernels.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                run = {"tiny": run_tiny, "realistic": run_realistic}[case]
                rows.append(run(root, seed, kernels))
                print(rows[-1], flush=True)
                save()
    df = save()
    print(df.to_markdown(index=False))
    numeric = df.select_dtypes("number").drop(columns=["seed", "exit"], errors="ignore")
    print("\nminimum per case:\n" + df[["case"]].join(numeric).groupby("case").min()
          .T.to_markdown())


if __name__ == "__main__":
    main()
