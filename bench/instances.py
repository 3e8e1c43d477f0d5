"""Precision and recall of the motif instances of a simulated run (a benchmark, not a test).

After a run on a simulated genome (the demo, or the CI's tiny config), compares
``results/NAME/motifs/instances/all.bed.gz`` with the planted sites
(``resources/NAME/planted.tsv``), using the overlap rule of
``peak2motif.motifs.overlap_planted`` (half of the shorter interval):

- precision: instances on a planted site, and on a site of the motif they are named after;
- recall: planted sites covered by an instance of their own motif.

Usage: ``.venv/bin/python bench/instances.py [--workdir .] [--dataset demo]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from peak2motif.motifs import overlap_planted  # noqa: E402


def measure(workdir: Path, dataset: str) -> pd.DataFrame:
    bed = pd.read_csv(workdir / f"results/{dataset}/motifs/instances/all.bed.gz", sep="\t",
                      header=None, names=["chrom", "start", "end", "name", "score", "strand",
                                          "peak"])
    planted = pd.read_csv(workdir / f"resources/{dataset}/planted.tsv", sep="\t")
    hit, motif_id = overlap_planted(bed[["chrom", "start", "end"]], planted)
    name_of = planted.drop_duplicates("motif_id").set_index("motif_id")["motif_name"]
    same = hit & (pd.Series(motif_id).map(name_of).str.upper().to_numpy()
                  == bed["name"].str.upper().to_numpy())
    rows = []
    for name, truth in planted.groupby("motif_name"):
        own = bed[bed["name"].str.upper() == name.upper()]
        covered, _ = overlap_planted(truth[["chrom", "start", "end"]],
                                     own.assign(motif_id=name)[["chrom", "start", "end",
                                                                "motif_id"]])
        sel = (bed["name"].str.upper() == name.upper()).to_numpy()
        rows.append({"motif": name, "planted_sites": len(truth), "instances": int(sel.sum()),
                     "precision_any_site": round(float(hit[sel].mean()), 3) if sel.any() else 0,
                     "precision_own_site": round(float(same[sel].mean()), 3) if sel.any() else 0,
                     "recall": round(float(covered.mean()), 3)})
    rows.append({"motif": "all", "planted_sites": len(planted), "instances": len(bed),
                 "precision_any_site": round(float(hit.mean()), 3),
                 "precision_own_site": round(float(same.mean()), 3),
                 "recall": round(sum(r["recall"] * r["planted_sites"] for r in rows)
                                 / len(planted), 3)})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--dataset", default="demo")
    args = ap.parse_args()
    print(measure(Path(args.workdir), args.dataset).to_markdown(index=False))


if __name__ == "__main__":
    main()
