"""Motif instances in genome coordinates: every place a reported motif is used in a peak.

For each reported motif (a row of ``motifs.tsv``), its task's explained peaks are scanned
(:mod:`peak2motif.hits`): an instance is a window whose sequence matches the motif's trimmed
PPM (``site_score``) and whose contribution, in the motif's sign, reaches a threshold taken
from a null — the largest such window contribution in each matched negative the same models
explained; the threshold is their ``1 - null_fraction`` quantile (so only that fraction of
negatives would have an instance), and never below the motif's own seqlet threshold.
Overlapping candidates keep the one of largest contribution.

Outputs in ``results/NAME/motifs/instances/``: ``PATTERN.bed.gz`` (+ ``.tbi``, bgzip and tabix
via pysam) per motif and ``all.bed.gz`` with BED6+ columns ``chrom start end name score
strand peak`` (score: the contribution; name: the motif's match or pattern name), a
``counts.tsv`` peak x motif table, a figure of the instances' positions around the summits
and of how often motifs co-occur, and an HTML page.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from peak2motif import hits
from peak2motif.contributions import read_task
from peak2motif.motifs import load_patterns
from peak2motif.regions import read_regions
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

BED_COLUMNS = ["chrom", "start", "end", "name", "score", "strand", "peak"]


def null_threshold(scan_neg: hits.Scan, site_score: float, sign: int,
                   null_fraction: float) -> float:
    """The contribution at which only ``null_fraction`` of the negatives have a site this
    strong (their best site-matching window, in the motif's sign); at least 0."""
    strength = np.where(scan_neg.site_score >= site_score, scan_neg.contribution * sign,
                        -np.inf)
    best = strength.max(1) if strength.shape[1] else np.full(len(strength), -np.inf)
    q = np.quantile(best, 1 - null_fraction, method="higher") if len(best) else -np.inf
    return float(sign * max(q, 0.0))


def pattern_instances(pattern, trim: tuple[int, int], contributions, regions: pd.DataFrame,
                      *, site_score: float, null_fraction: float, seqlet_quantile: float,
                      name: str) -> tuple[pd.DataFrame, float]:
    """Instances of one pattern in its task's explained peaks (BED columns, 0-based) and the
    contribution threshold used."""
    t0, t1 = trim
    ppm = pattern.ppm[t0:t1]
    background = hits.base_composition(contributions.onehot)
    actual = contributions.actual
    pos = contributions.positive
    sign = pattern.sign_value
    row_of = pd.Series(np.arange(len(contributions.region_index)),
                       index=contributions.region_index)
    s = pattern.seqlets
    where = row_of.reindex(s["example_idx"].to_numpy()).to_numpy()
    ok = np.isfinite(where)
    starts = np.where(s["is_revcomp"], s["end"] - t1, s["start"] + t0)
    tau = hits.seqlet_threshold(actual, where[ok].astype(np.int64), starts[ok], t1 - t0,
                                sign, seqlet_quantile)
    if (~pos).any():
        neg = hits.scan(ppm, contributions.onehot[~pos], actual[~pos], background)
        tau_null = null_threshold(neg, site_score, sign, null_fraction)
        tau = sign * max(sign * tau, sign * tau_null)
    scan = hits.scan(ppm, contributions.onehot[pos], actual[pos], background)
    found = hits.call_hits(scan, site_score, sign, t1 - t0, tau)
    region = regions.iloc[contributions.region_index[pos][found["sequence"].to_numpy()]]
    bed = pd.DataFrame({
        "chrom": region["chrom"].to_numpy(),
        "start": region["start"].to_numpy() + found["start"].to_numpy(),
        "end": region["start"].to_numpy() + found["end"].to_numpy(),
        "name": name, "score": found["contribution"].round(4).to_numpy(),
        "strand": found["strand"].to_numpy(), "peak": region["name"].to_numpy(),
    })
    return bed.sort_values(["chrom", "start"], kind="stable").reset_index(drop=True), tau


def write_bed(bed: pd.DataFrame, path: str | os.PathLike) -> None:
    """bgzip-compressed, tabix-indexed BED (``path`` ends in .bed.gz; .tbi beside it)."""
    import pysam

    path = Path(path)
    plain = path.with_suffix("")  # x.bed
    with atomic_output(plain) as tmp:
        bed.to_csv(tmp, sep="\t", header=False, index=False)
    pysam.tabix_index(str(plain), preset="bed", force=True, keep_original=False)


def call_instances(motifs_tsv, patterns_tsv, modisco: dict[str, str | os.PathLike],
                   contributions_h5, regions_tsv, out_dir, counts_tsv, figure_png, html,
                   params: dict) -> pd.DataFrame:
    """Rule ``call_instances``: instances of every reported motif; see the module docstring.

    Returns the table of all instances (BED columns plus ``pattern`` and ``task``).
    """
    from peak2motif.config import with_defaults

    params = with_defaults("motifs", params)
    table = pd.read_csv(motifs_tsv, sep="\t")
    summary = pd.read_csv(patterns_tsv, sep="\t").set_index("pattern")
    regions = read_regions(regions_tsv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    every = []
    thresholds = {}
    for task, rows in table.groupby("task", sort=False):
        patterns = {p.name: p for p in load_patterns(modisco[task], task)}
        c = read_task(contributions_h5, task)
        for row in rows.itertuples():
            trim = (int(summary.loc[row.pattern, "trim_start"]),
                    int(summary.loc[row.pattern, "trim_end"]))
            name = row.match_name if isinstance(row.match_name, str) else row.pattern
            bed, tau = pattern_instances(
                patterns[row.pattern], trim, c, regions, site_score=params["site_score"],
                null_fraction=params["instance_null_fraction"],
                seqlet_quantile=params["hit_contribution_quantile"], name=name)
            thresholds[row.pattern] = tau
            write_bed(bed, out_dir / f"{row.pattern}.bed.gz")
            every.append(bed.assign(pattern=row.pattern, task=task))
            log.info("%s (%s): %d instances (contribution threshold %.3g)", row.pattern, name,
                     len(bed), tau)
    allbed = (pd.concat(every, ignore_index=True) if every
              else pd.DataFrame(columns=[*BED_COLUMNS, "pattern", "task"]))
    allbed = allbed.sort_values(["chrom", "start"], kind="stable").reset_index(drop=True)
    write_bed(allbed[BED_COLUMNS], out_dir / "all.bed.gz")
    peaks = regions[regions["kind"] == "peak"]
    counts = pd.crosstab(allbed["peak"], allbed["pattern"]) if len(allbed) else pd.DataFrame(
        index=pd.Index([], name="peak"))
    counts = counts.reindex(peaks["name"], fill_value=0)
    counts.index.name = "peak"
    with atomic_output(counts_tsv) as tmp:
        counts.to_csv(tmp, sep="\t")
    plot_instances(allbed, regions, counts, table, figure_png)
    with atomic_output(html) as tmp:
        Path(tmp).write_text(instances_html(allbed, counts, table, thresholds, figure_png,
                                            params))
    return allbed


def plot_instances(allbed: pd.DataFrame, regions: pd.DataFrame, counts: pd.DataFrame,
                   table: pd.DataFrame, path) -> None:
    """Positions of instances relative to the window centre (per motif), and co-occurrence
    (fraction of peaks with the row motif that also have the column motif)."""
    from peak2motif.presentation import pyplot

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    if len(allbed):
        centre = regions.set_index("name").loc[allbed["peak"]]
        mid = ((centre["start"] + centre["end"]) // 2).to_numpy()
        offset = (allbed["start"].to_numpy() + allbed["end"].to_numpy()) // 2 - mid
        width = int((regions["end"] - regions["start"]).iloc[0])
        bins = np.linspace(-width / 2, width / 2, 41)
        for _, sub in allbed.assign(offset=offset).groupby("pattern", sort=False):
            label = sub["name"].iloc[0]
            ax.hist(sub["offset"], bins=bins, histtype="step", lw=1.5, label=label)
        ax.legend(fontsize=7)
    ax.set(xlabel="instance centre - window centre (bp)", ylabel="instances",
           title="Where instances lie around the summit")
    present = (counts > 0).astype(float)
    if present.shape[1]:
        both = present.T @ present
        frac = both / np.maximum(np.diag(both)[:, None], 1)
        im = bx.imshow(frac.to_numpy(), vmin=0, vmax=1, cmap="viridis")
        names = [table.set_index("pattern").loc[p, "match_name"] if isinstance(
            table.set_index("pattern").loc[p, "match_name"], str) else p for p in frac.columns]
        bx.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        bx.set_yticks(range(len(names)), names, fontsize=7)
        values = frac.to_numpy()
        if len(names) <= 15:
            for (r, c), v in np.ndenumerate(values):
                bx.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 0.6 else "white")
        fig.colorbar(im, ax=bx, label="fraction of row motif's peaks with column motif")
    bx.set_title("Co-occurrence in peaks")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def instances_html(allbed, counts, table, thresholds, figure_png, params) -> str:
    from peak2motif.presentation import data_uri, render
    from peak2motif.presentation import table as html_table

    rows = []
    for row in table.itertuples():
        n = int((allbed["pattern"] == row.pattern).sum()) if len(allbed) else 0
        peaks = int((counts[row.pattern] > 0).sum()) if row.pattern in counts else 0
        rows.append({"task": row.task, "pattern": row.pattern,
                     "motif": row.match_name if isinstance(row.match_name, str) else "",
                     "instances": n, "peaks with one": peaks,
                     "contribution threshold": thresholds.get(row.pattern, np.nan)})
    return render("instances.html", title="motif instances", site_score=params["site_score"],
                  null_fraction=f"{params['instance_null_fraction']:.0%}",
                  table=html_table(pd.DataFrame(rows, columns=[
                      "task", "pattern", "motif", "instances", "peaks with one",
                      "contribution threshold"])),
                  figure=data_uri(figure_png))
