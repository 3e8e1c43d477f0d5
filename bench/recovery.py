"""The realistic recovery suite: does the workflow find the motifs that are there, and only
those, on data nobody tuned it for? A benchmark, not a test (hours on 2 cores).

Each case of ``bench/recovery_data.py`` (real genome sequence, PWM-sampled or real sites,
or nothing) is run the way a new user would: a config with only ``genome`` and ``peaks``
(plus the JASPAR taxon for the worm, or the MEME file for E. coli CRP), through the real
workflow (``snakemake --cores N``). Then, from what the workflow wrote:

- ``test_auroc``: pooled held-out auROC (mean over tasks);
- ``recovered``: planted motifs matched (exact JASPAR id, or the same JASPAR family) at
  q < 0.05 by a reported pattern (of the motif's own task in the multi-task case);
- ``off_target``: reported patterns with a significant match outside the planted families
  whose seqlets do not lie on planted sites (on a negative control: every reported pattern);
- ``unmatched``: reported patterns without a significant match;
- ``interp_auroc``: interpretability AUROC (contribution magnitude at planted positions vs
  the rest of the same windows, Koo & Ploenzke 2021), first task;
- wall time of each stage (Snakemake's benchmark files).

Usage::

    .venv/bin/python bench/recovery.py                       # every case, default settings
    .venv/bin/python bench/recovery.py --cases worm_planted_3000,worm_control_3000 \\
        --set training.optimizer.learning_rate=0.001 --tag lr0.001

Results go to ``bench/results/recovery_TAG.tsv`` (one row per case) and are printed as a
markdown table for BENCHMARKS.md. Data and runs live under ``resources/recovery/`` (not in git).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

import recovery_data  # noqa: E402

STAGES = {
    "data": ("prepare_regions", "extract_sequences"),
    "train": ("train_model", "train_sweep_point", "evaluate_model", "summarize_evaluation"),
    "attribute": ("compute_contributions", "crosscheck_contributions", "gather_contributions"),
    "motifs": ("discover_motifs", "match_motifs"),
}


def parse_sets(items: list[str]) -> dict:
    """``a.b.c=value`` pairs (value read as YAML) -> a nested config mapping."""
    out: dict = {}
    for item in items:
        key, _, raw = item.partition("=")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def user_config(case_dir: Path, meta: dict, sets: dict) -> dict:
    """What a user would write: genome and peaks, the taxon or the MEME file; plus ``sets``."""
    peaks = {t: str(case_dir / f) for t, f in meta["tasks"].items()}
    ds = {"genome": str(case_dir / "genome.fa"),
          "peaks": peaks["peaks"] if list(peaks) == ["peaks"] else peaks}
    cfg: dict = {"datasets": {meta["name"]: ds}}
    if meta.get("jaspar_tax_group"):
        cfg["motifs"] = {"jaspar_tax_group": meta["jaspar_tax_group"]}
    if meta.get("meme_file"):
        cfg["motifs"] = {"meme_file": str(case_dir / meta["meme_file"])}
    return merge(cfg, sets)


def run_workflow(work: Path, config: Path, cores: int, *targets: str,
                 env: dict | None = None) -> tuple[int, float]:
    """``snakemake --cores N`` in ``work`` with ``config`` (log: work/snakemake.log), as a user
    would run it; the exit code and the wall seconds. Shared by the benchmarks."""
    env = dict(os.environ, **(env or {}),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    t0 = time.perf_counter()
    with open(work / "snakemake.log", "w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
             "--directory", str(work), "--configfile", str(config), "--cores", str(cores),
             "--rerun-incomplete", *targets],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    return proc.returncode, time.perf_counter() - t0


def run_case(case: recovery_data.Case, root: Path, runs: Path, sets: dict, cores: int,
             env: dict | None = None) -> tuple[Path, float, int]:
    case_dir = recovery_data.build_case(case, root, root / "cache")
    meta = yaml.safe_load((case_dir / "case.yaml").read_text())
    work = runs / case.name
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(user_config(case_dir, meta, sets)))
    rc, seconds = run_workflow(work, work / "config.yaml", cores, env=env)
    return work, seconds, rc


def stage_seconds(work: Path, name: str) -> dict[str, float]:
    out = {}
    bench = work / "benchmarks" / name
    for stage, rules in STAGES.items():
        total = 0.0
        for rule in rules:
            for f in list(bench.glob(f"{rule}.tsv")) + list(bench.glob(f"{rule}/*.tsv")):
                total += float(pd.read_csv(f, sep="\t")["s"].iloc[-1])
        out[f"{stage}_s"] = round(total, 1)
    return out


def families(text) -> set[str]:
    return {f.strip() for f in str(text).split(";") if f.strip() and str(text) != "nan"}


def judge(work: Path, case_dir: Path, meta: dict) -> dict:
    """Score one finished run against the case's truth."""
    from peak2motif import checks, motifs
    from peak2motif.contributions import read_task
    from peak2motif.regions import read_regions

    name = meta["name"]
    res = work / "results" / name
    truth = pd.read_csv(case_dir / "truth.tsv", sep="\t")
    metrics = pd.read_csv(res / "evaluation" / "metrics.tsv", sep="\t", dtype={"fold": str})
    pooled = metrics[(metrics.fold == "pooled") & (metrics.metric == "auroc")]
    table = pd.read_csv(res / "motifs" / "motifs.tsv", sep="\t")
    summary = pd.read_csv(res / "motifs" / "patterns.tsv", sep="\t")
    regions = read_regions(res / "sequences" / "regions.tsv")
    sig = table["match_id"].notna()
    out = {"case": name, "test_auroc": round(float(pooled.value.mean()), 3),
           "reported": int(len(table)), "unmatched": int((~sig).sum()),
           "modisco_patterns": int(len(summary))}
    # where each reported pattern's seqlets lie
    on_sites = {}
    for task in table["task"].unique():
        pats = {p.name: p for p in motifs.load_patterns(res / "motifs" / task / "modisco.h5",
                                                        task)}
        for row in summary[summary.task == task].itertuples():
            p = pats[row.pattern]
            p.trim = (int(row.trim_start), int(row.trim_end))
            if len(truth):
                hit, _ = motifs.overlap_planted(motifs.seqlet_intervals(p, regions), truth)
                on_sites[p.name] = float(hit.mean()) if len(hit) else 0.0
    planted_families = set().union(*[families(m["family"]) for m in meta["motifs"].values()]) \
        if meta["motifs"] else set()
    recovered, missing = [], []
    for mid, m in meta["motifs"].items():
        task_of = truth.loc[truth.motif_id == mid, "task"]
        task = task_of.iloc[0] if len(task_of) else None
        cand = table[sig & ((table["task"] == task) if task else True)]
        own = families(m["family"])
        ok = (cand["match_id"] == mid) | cand["match_family"].map(
            lambda f, own=own: bool(families(f) & own))
        (recovered if ok.any() else missing).append(m["name"])
    off = 0
    for row in table[sig].itertuples():
        inside = families(row.match_family) & planted_families or row.match_id in meta["motifs"]
        if not inside and on_sites.get(row.pattern, 0.0) < 0.5:
            off += 1
    if meta["kind"] == "control":
        off = int(len(table))
    out.update(recovered=f"{len(recovered)}/{len(meta['motifs'])}", off_target=off,
               missing=",".join(missing))
    first = next(iter(meta["tasks"]))
    if len(truth):
        c = read_task(res / "contributions" / "contributions.h5", first, positives_only=True)
        windows = regions.iloc[c.region_index][["chrom", "start"]].reset_index(drop=True)
        own = truth[truth.task == first] if "task" in truth else truth
        out["interp_auroc"] = round(checks.interpretability_auroc(c.actual, windows, own), 3)
    else:
        out["interp_auroc"] = np.nan
    return out


def _site_mask(windows: pd.DataFrame, sites: pd.DataFrame, length: int) -> np.ndarray:
    from peak2motif.checks import planted_mask

    return planted_mask(windows, sites, length) if len(sites) else np.zeros(
        (len(windows), length), bool)


def per_factor(work: Path, case_dir: Path, meta: dict) -> pd.DataFrame:
    """Where each planted factor is found or lost (single-task cases), one row per factor.

    - ``interp_auroc``: the model. Contribution magnitude at the factor's sites against the
      positions of the same windows that hold no planted site at all (other factors' sites
      left out, so a crowded window does not count them against it).
    - ``seqlets``: TF-MoDISco seqlets (every pattern, reported or not) on its sites.
    - ``pattern``, ``share``, ``purity``: the clustering. The pattern holding most of those
      seqlets, the share of them it holds, and the fraction of that pattern's on-site seqlets
      that are this factor's (low purity: a pattern merged from several factors).
    - ``reported``, ``match_name``, ``recovered``: the naming (TomTom, family rule as judge).
    - ``lost_at``: the first stage that fails: model (interp. AUROC < 0.75), seqlets (< 50 on
      its sites), clustering (its main pattern not reported, or purity < 0.5), naming
      (reported, but matched outside its family), or '' when recovered.
    """
    from peak2motif import motifs
    from peak2motif.contributions import read_task
    from peak2motif.regions import read_regions

    name = meta["name"]
    res = work / "results" / name
    truth = pd.read_csv(case_dir / "truth.tsv", sep="\t")
    table = pd.read_csv(res / "motifs" / "motifs.tsv", sep="\t")
    summary = pd.read_csv(res / "motifs" / "patterns.tsv", sep="\t")
    regions = read_regions(res / "sequences" / "regions.tsv")
    task = next(iter(meta["tasks"]))
    c = read_task(res / "contributions" / "contributions.h5", task, positives_only=True)
    windows = regions.iloc[c.region_index][["chrom", "start"]].reset_index(drop=True)
    length = c.actual.shape[1]
    score = np.abs(c.actual.sum(-1))
    any_site = _site_mask(windows, truth, length)
    pats = {p.name: p for p in motifs.load_patterns(res / "motifs" / task / "modisco.h5", task)}
    owner = {}
    for row in summary[summary.task == task].itertuples():
        p = pats[row.pattern]
        p.trim = (int(row.trim_start), int(row.trim_end))
        hit, which = motifs.overlap_planted(motifs.seqlet_intervals(p, regions), truth)
        owner[p.name] = pd.Series(which[hit]).value_counts()
    on_site = pd.DataFrame(owner).fillna(0).astype(int)  # factor x pattern
    rows = []
    from sklearn.metrics import roc_auc_score

    for mid, m in meta["motifs"].items():
        sites = truth[truth.motif_id == mid]
        own = _site_mask(windows, sites, length)
        keep = own.any(1)
        use = own[keep] | ~any_site[keep]
        auc = roc_auc_score(own[keep][use], score[keep][use]) if keep.any() else np.nan
        counts = on_site.loc[mid] if mid in on_site.index else pd.Series(dtype=int)
        seqlets = int(counts.sum())
        best = counts.idxmax() if seqlets else ""
        share = counts.max() / seqlets if seqlets else 0.0
        purity = (on_site.loc[mid, best] / on_site[best].sum()) if seqlets else 0.0
        rep = table[table.pattern == best]
        fams = families(m["family"])
        match = rep["match_name"].iloc[0] if len(rep) else ""
        match_fam = rep["match_family"].iloc[0] if len(rep) else ""
        # recovered by any reported pattern of the task, as judge counts it
        sig = table[table["match_id"].notna()]
        recovered = bool(((sig["match_id"] == mid) | sig["match_family"].map(
            lambda f, own=fams: bool(families(f) & own))).any())
        if recovered:
            lost = ""
        elif not auc >= 0.75:
            lost = "model"
        elif seqlets < 50:
            lost = "seqlets"
        elif not len(rep) or purity < 0.5:
            lost = "clustering"
        else:
            lost = "naming"
        rows.append({"case": name, "factor": m["name"], "id": mid, "family": m["family"],
                     "sites": len(sites), "interp_auroc": round(float(auc), 3),
                     "seqlets": seqlets, "pattern": best.split(".", 1)[-1],
                     "share": round(float(share), 2), "purity": round(float(purity), 2),
                     "reported": bool(len(rep)),
                     "match_name": match if isinstance(match, str) else "",
                     "match_family": match_fam if isinstance(match_fam, str) else "",
                     "recovered": recovered, "lost_at": lost})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(c.name for c in recovery_data.CASES))
    ap.add_argument("--root", default=str(REPO / "resources" / "recovery"))
    ap.add_argument("--tag", default="default")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], dest="sets",
                    help="config override a.b=value (YAML value); repeatable")
    args = ap.parse_args()
    root = Path(args.root)
    runs = root / "runs" / args.tag
    sets = parse_sets(args.sets)
    rows = []
    out_tsv = REPO / "bench" / "results" / f"recovery_{args.tag}.tsv"
    out_tsv.parent.mkdir(parents=True, exist_ok=True)
    for name in args.cases.split(","):
        case = recovery_data.BY_NAME[name]
        work, seconds, rc = run_case(case, root, runs, sets, args.cores)
        meta = yaml.safe_load((root / name / "case.yaml").read_text())
        row = {"case": name, "exit": rc, "wall_s": round(seconds, 1)}
        if rc == 0:
            row.update(judge(work, root / name, meta))
            row.update(stage_seconds(work, name))
            if len(meta["tasks"]) == 1 and meta["motifs"]:
                factors = per_factor(work, root / name, meta)
                print(factors.to_string(index=False), flush=True)
                factor_tsv = out_tsv.with_name(f"recovery_{args.tag}_{name}_factors.tsv")
                factors.to_csv(factor_tsv, sep="\t", index=False)
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False), flush=True)
        pd.DataFrame(rows).to_csv(out_tsv, sep="\t", index=False)
    table = pd.DataFrame(rows)
    print(f"\nsettings: {sets or 'defaults'}\n")
    print(table.to_markdown(index=False) if hasattr(table, "to_markdown")
          else table.to_string(index=False))


if __name__ == "__main__":
    main()
