"""Choosing the training defaults on the realistic suite (a benchmark, not a test).

For each chosen case of ``bench/recovery_data.py`` the data stage runs once (one fold, the
default split), then each candidate setting trains a model and is scored on the held-out
test split: test auROC (mean over tasks), the epoch early stopping chose, and the
interpretability AUROC of native DeepLIFT contributions on the test positives (first task).

    .venv/bin/python bench/training_defaults.py --cases worm_planted_500,worm_planted_3000 \\
        --grid "training.optimizer.learning_rate=[0.01,0.001]" \\
        --grid "model.first_activation=[relu,exponential]"

Every grid point is applied over the schema defaults (plus ``--set`` overrides). Results go
to ``bench/results/training_TAG.tsv``.
"""

from __future__ import annotations

import argparse
import itertools
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
from recovery import merge, parse_sets  # noqa: E402


def prepare(case_dir: Path, meta: dict, out: Path) -> dict[str, Path]:
    from peak2motif.extract import extract_sequences
    from peak2motif.regions import prepare_regions, resolve_task_type

    peaks = {t: case_dir / f for t, f in meta["tasks"].items()}
    files = {s: out / f"{s}.h5" for s in ("train", "valid", "test")}
    if not files["test"].exists():
        prepare_regions(case_dir / "genome.fa", peaks, out / "regions.tsv", out / "summary.tsv",
                        dataset=meta["name"], dataset_config={}, data_config={})
        extract_sequences(case_dir / "genome.fa", out / "regions.tsv", {0: files},
                          resolve_task_type("auto", len(peaks)))
    return files


def interp_auroc(model, test: Path, regions_tsv: Path, truth: pd.DataFrame, task: str
                 ) -> float:
    from peak2motif import checks, explain
    from peak2motif.attribution import references
    from peak2motif.config import with_defaults
    from peak2motif.regions import read_regions
    from peak2motif.sequences import one_hot
    from peak2motif.splitfiles import read_split

    d = read_split(test)
    j = d.tasks.index(task)
    keep = d.labels[:, j] > 0
    codes, index = d.codes[keep], d.region_index[keep]
    settings = with_defaults("attribution")
    refs, _ = references(codes, index, settings, 0.4)
    res = explain.explain(model, one_hot(codes), refs, method="deeplift", task_index=j)
    regions = read_regions(regions_tsv)
    windows = regions.iloc[index][["chrom", "start"]].reset_index(drop=True)
    own = truth[truth.task == task]
    return checks.interpretability_auroc(res.hypothetical * one_hot(codes), windows, own)


def main() -> None:
    from peak2motif.config import with_defaults
    from peak2motif.evaluate import evaluate_splits
    from peak2motif.train import train_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", required=True)
    ap.add_argument("--grid", action="append", default=[],
                    help="dotted.key=[v1,v2] (YAML list); repeatable")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--tag", default="grid")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--root", default=str(REPO / "resources" / "recovery"))
    args = ap.parse_args()
    root = Path(args.root)
    base = parse_sets(args.sets)
    keys, values = [], []
    for g in args.grid:
        k, _, v = g.partition("=")
        keys.append(k)
        values.append(yaml.safe_load(v))
    out_tsv = REPO / "bench" / "results" / f"training_{args.tag}.tsv"
    out_tsv.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.cases.split(","):
        case = recovery_data.BY_NAME[name]
        case_dir = recovery_data.build_case(case, root, root / "cache")
        meta = yaml.safe_load((case_dir / "case.yaml").read_text())
        data = root / "training" / name
        data.mkdir(parents=True, exist_ok=True)
        files = prepare(case_dir, meta, data)
        truth = pd.read_csv(case_dir / "truth.tsv", sep="\t")
        for point in itertools.product(*values):
            over = parse_sets([f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                               for k, v in zip(keys, point, strict=True)])
            cfg = merge(base, over)
            model_cfg = with_defaults("model", cfg.get("model"))
            training_cfg = with_defaults("training", merge({"threads": args.threads},
                                                            cfg.get("training", {})))
            t0 = time.perf_counter()
            model, history = train_model(files["train"], files["valid"], model_cfg,
                                         training_cfg, threads=args.threads)
            seconds = time.perf_counter() - t0
            metrics, _ = evaluate_splits(model, {"test": files["test"]})
            auroc = float(metrics[metrics.metric == "auroc"].value.mean())
            best = (int(history["val_loss"].idxmin()) + 1) if "val_loss" in history else 0
            task = next(iter(meta["tasks"]))
            ia = interp_auroc(model, files["test"], data / "regions.tsv", truth, task) \
                if len(truth) else np.nan
            row = {"case": name, **dict(zip(keys, point, strict=True)),
                   "test_auroc": round(auroc, 3), "interp_auroc": round(ia, 3),
                   "epochs_run": len(history), "best_val_loss_epoch": best,
                   "train_s": round(seconds, 1)}
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False), flush=True)
            pd.DataFrame(rows).to_csv(out_tsv, sep="\t", index=False)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
