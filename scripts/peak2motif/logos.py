"""Sequence logos (logomaker) of discovered motifs and the HTML page that shows them.

Each kept pattern gets its trimmed CWM (contribution weight matrix, ``(W, 4)``) drawn forward
and reverse-complemented for the motif table, the information logos of its top three database
matches, and one PNG with the CWM on top and, below it on the same x axis, its best match. A
match is reverse-complemented when TomTom matched the reverse strand and shifted by TomTom's
offset, so aligned columns sit on top of each other.
"""

from __future__ import annotations

import logging
from pathlib import Path

import logomaker
import numpy as np
import pandas as pd

from peak2motif.config import with_defaults
from peak2motif.motifs import information_content
from peak2motif.presentation import pyplot
from peak2motif.sequences import BASES as SEQUENCE_BASES
from peak2motif.utils import atomic_output

plt = pyplot()

log = logging.getLogger(__name__)

LOGO_COLUMNS = list(SEQUENCE_BASES)


def _frame(matrix: np.ndarray, positions: np.ndarray) -> pd.DataFrame:
    """``(W, 4)`` -> logomaker's data frame (columns A, C, G, T; index = x positions)."""
    return pd.DataFrame(np.asarray(matrix, dtype=float), columns=LOGO_COLUMNS, index=positions)


def information_matrix(ppm: np.ndarray) -> np.ndarray:
    """``(W, 4)`` PPM -> letter heights in bits (probability x information of the column,
    the same information content the motif filters use)."""
    p = np.asarray(ppm, dtype=float)
    p = p / p.sum(axis=1, keepdims=True)
    return p * information_content(p)[:, None]


def aligned_target(
    target_ppm: np.ndarray, strand: str, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """A TomTom target ``(4, Wt)`` as ``(Wt, 4)`` in the query's frame, and its x positions.

    TomTom's offset o means query column j faces target column j + o (of the reverse
    complement when ``strand`` is '-'), so target column k sits at x = k - o.
    """
    t = np.asarray(target_ppm, dtype=float)
    if strand == "-":
        t = t[::-1, ::-1]
    return t.T, np.arange(t.shape[1]) - int(offset)


def draw_logo(
    path: str | Path,
    cwm: np.ndarray,
    title: str,
    target_ppm: np.ndarray | None = None,
    target_title: str = "",
    strand: str = "+",
    offset: int = 0,
) -> None:
    """Draw the CWM ``(W, 4)`` and, if given, the aligned target ``(4, Wt)`` into one PNG."""
    n_rows = 2 if target_ppm is not None else 1
    x_q = np.arange(len(cwm))
    xs = [x_q]
    if target_ppm is not None:
        t, x_t = aligned_target(target_ppm, strand, offset)
        xs.append(x_t)
    lo = min(x.min() for x in xs) - 0.5
    hi = max(x.max() for x in xs) + 0.5
    fig, axes = plt.subplots(
        n_rows, 1, figsize=(max(5.5, 0.35 * (hi - lo) + 1.5), 1.8 * n_rows), squeeze=False
    )
    ax = axes[0, 0]
    logomaker.Logo(_frame(cwm, x_q), ax=ax)
    ax.set_xlim(lo, hi)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel("contribution")
    if target_ppm is not None:
        ax2 = axes[1, 0]
        logomaker.Logo(_frame(information_matrix(t), x_t), ax=ax2)
        ax2.set_xlim(lo, hi)
        ax2.set_ylim(0, 2)
        ax2.set_ylabel("bits")
        ax2.set_title(target_title, fontsize=9, loc="left")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def top_matches(i: int, db, matches: dict[str, np.ndarray], max_qvalue: float,
                k: int = 3) -> list[dict]:
    """The best ``k`` database motifs of kept pattern ``i`` with different TF names and
    ``q < max_qvalue``, best p-value first (the order :func:`peak2motif.motifs.motif_table`
    picks its best and second match in). Each: id, name, qvalue, strand, offset, index."""
    if not len(db):
        return []
    order = np.argsort(matches["pvalue"][i], kind="stable")
    found, names = [], set()
    for j in order:
        if matches["qvalue"][i, j] >= max_qvalue or len(found) == k:
            break
        if db.names[j].upper() in names:
            continue
        names.add(db.names[j].upper())
        found.append(dict(id=db.ids[j], name=db.names[j], qvalue=float(matches["qvalue"][i, j]),
                          strand="+-"[int(matches["strand"][i, j])],
                          offset=int(matches["offset"][i, j]), index=int(j)))
    return found


def draw_cwm(path: str | Path, cwm: np.ndarray, positions: np.ndarray | None = None,
             xlim: tuple[float, float] | None = None, bits: bool = False) -> None:
    """A compact logo of one ``(W, 4)`` matrix for the motif table (no title; the table's
    header says what it is). ``bits`` draws an information logo on a 0-2 axis."""
    x = np.arange(len(cwm)) if positions is None else positions
    lo, hi = xlim if xlim else (x.min() - 0.5, x.max() + 0.5)
    fig, ax = plt.subplots(figsize=(max(2.4, 0.2 * (hi - lo) + 0.6), 1.05))
    logomaker.Logo(_frame(cwm, x), ax=ax)
    ax.set_xlim(lo, hi)
    ax.set_xticks([])
    ax.tick_params(axis="y", labelsize=7)
    if bits:
        ax.set_ylim(0, 2)
        ax.set_ylabel("bits", fontsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout(pad=0.2)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def draw_logos(kept, table: pd.DataFrame, db, logos_dir: str | Path,
               matches: dict[str, np.ndarray] | None = None,
               max_qvalue: float = 0.05) -> dict[str, dict]:
    """The figures of each kept pattern (``peak2motif.motifs.Pattern``) in ``logos_dir``.

    ``table`` is the motif table (one row per kept pattern, same order); ``db`` the
    ``MotifDatabase`` and ``matches`` the TomTom arrays (``pvalue``, ``qvalue``, ``strand``,
    ``offset``, each ``(n_kept, n_db)``) its matches come from. Per pattern:
    ``PATTERN.png`` (the CWM and, aligned below, its best match), ``PATTERN.forward.png`` and
    ``PATTERN.reverse.png`` (the CWM and its reverse complement, for the table) and
    ``PATTERN.match_K.png`` (the K-th of the :func:`top_matches`, in the CWM's frame).
    Returns pattern name -> {"figure", "forward", "reverse": Path, "matches": [dict with
    "logo": Path]}.
    """
    logos_dir = Path(logos_dir)
    logos_dir.mkdir(parents=True, exist_ok=True)
    index = {mid: i for i, mid in enumerate(db.ids)}
    files = {}
    for i, (p, (_, row)) in enumerate(zip(kept, table.iterrows(), strict=True)):
        t0, t1 = p.trim
        cwm = p.cwm[t0:t1]
        target = None
        kwargs = {}
        if isinstance(row["match_id"], str) and row["match_id"] in index:
            target = db.ppms[index[row["match_id"]]]
            kwargs = dict(
                target_title=(
                    f"best match {row['match_id']} {row['match_name']} "
                    f"(q = {row['qvalue']:.2g}, strand {row['match_strand']})"
                ),
                strand=row["match_strand"],
                offset=int(row["match_offset"]),
            )
        out = dict(figure=logos_dir / f"{p.name}.png", forward=logos_dir / f"{p.name}.forward.png",
                   reverse=logos_dir / f"{p.name}.reverse.png", matches=[])
        draw_logo(out["figure"], cwm, title=f"{p.name}  ({p.n_seqlets} seqlets, {p.sign})",
                  target_ppm=target, **kwargs)
        draw_cwm(out["forward"], cwm)
        draw_cwm(out["reverse"], cwm[::-1, ::-1])
        found = top_matches(i, db, matches, max_qvalue) if matches is not None else []
        for k, match in enumerate(found, start=1):
            t, x_t = aligned_target(db.ppms[match["index"]], match["strand"], match["offset"])
            lo = min(x_t.min(), 0) - 0.5
            hi = max(x_t.max(), len(cwm) - 1) + 0.5
            match["logo"] = logos_dir / f"{p.name}.match_{k}.png"
            draw_cwm(match["logo"], information_matrix(t), x_t, (lo, hi), bits=True)
            out["matches"].append(match)
        files[p.name] = out
    return files


def best_seqlet(pattern, actual: np.ndarray, row_of_region: dict[int, int]
                ) -> tuple[int, int, int] | None:
    """The seqlet of ``pattern`` whose trimmed core carries the most contribution: (row of
    ``actual``, core start, core end) in sequence coordinates. ``actual`` is ``(N, L)``, the
    per-position contributions of the task's explained sequences; ``row_of_region`` maps a
    regions.tsv row (the seqlets' ``example_idx``) to its row of ``actual``."""
    t0, t1 = pattern.trim if pattern.trim else (0, len(pattern.ppm))
    best, found = -np.inf, None
    for s in pattern.seqlets.itertuples():
        row = row_of_region.get(int(s.example_idx))
        if row is None:
            continue
        a, b = (s.end - t1, s.end - t0) if s.is_revcomp else (s.start + t0, s.start + t1)
        a, b = max(0, int(a)), min(actual.shape[1], int(b))
        score = float(actual[row, a:b].sum()) if b > a else -np.inf
        if score > best:
            best, found = score, (row, a, b)
    return found


def draw_examples(kept, table: pd.DataFrame, contributions, regions: pd.DataFrame, path,
                  flank: int = 30) -> None:
    """Example tracks, one per reported motif: the contributions of the observed bases around
    the motif's strongest seqlet, on genome coordinates, titled with the region's name.

    ``kept`` are the reported patterns and ``table`` their rows of the motif table (same
    order); ``contributions`` is contributions.h5 and ``regions`` regions.tsv.
    """
    from peak2motif.contributions import read_task

    n = max(1, len(kept))
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.9 * n), squeeze=False)
    tasks = {}
    for ax, p, (_, row) in zip(axes[:, 0], kept, table.iterrows(), strict=False):
        if p.task not in tasks:
            c = read_task(contributions, p.task, positives_only=True)
            actual = (c.hypothetical * c.onehot).astype(np.float32)
            tasks[p.task] = (actual, c.region_index,
                             {int(r): i for i, r in enumerate(c.region_index)})
        actual, region_index, rows = tasks[p.task]
        found = best_seqlet(p, actual.sum(axis=2), rows)
        if found is None:
            ax.axis("off")
            ax.text(0.5, 0.5, f"{p.name}: no explained seqlet", ha="center")
            continue
        r, a, b = found
        length = actual.shape[1]
        lo = max(0, min((a + b) // 2 - flank, length - 2 * flank))
        hi = min(length, lo + 2 * flank)
        region = regions.iloc[int(region_index[r])]
        x = int(region["start"]) + np.arange(lo, hi)
        logomaker.Logo(_frame(actual[r, lo:hi], x), ax=ax, color_scheme="classic")
        ax.axvspan(int(region["start"]) + a - 0.5, int(region["start"]) + b - 0.5,
                   color="gold", alpha=0.2, lw=0)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel("contribution", fontsize=8)
        ax.set_xlabel(f"{region['chrom']} position (bp, 0-based)", fontsize=8)
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)
        name = row["match_name"] if isinstance(row["match_name"], str) else "no match"
        ax.set_title(f"{p.name} ({name}): region {region['name']}, {region['chrom']}:"
                     f"{int(region['start']) + lo + 1:,}-{int(region['start']) + hi:,} "
                     "(motif shaded)", fontsize=9, loc="left")
    if not kept:
        axes[0, 0].axis("off")
        axes[0, 0].text(0.5, 0.5, "no motif was reported", ha="center")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def no_motif_sentence(params: dict) -> str:
    """What the page says when no pattern of a task is kept."""
    return (
        "No motif is reported: no TF-MoDISco pattern passed the filters (at least "
        f"{params['min_seqlets']} seqlets, trimming at {params['trim_threshold']} bits) and had "
        f"hits enriched at least {params['min_enrichment']}-fold over the matched negatives "
        f"(q < {params['enrichment_qvalue']}): the model found no reproducible sequence "
        "pattern that the negatives lack."
    )


# Columns of motifs.tsv that the main table shows; the rest go to the detail table.
MAIN = ("task", "pattern", "sign", "n_seqlets", "match_id", "match_name", "qvalue",
        "second_match_id", "second_match_name", "second_match_qvalue", "enrichment",
        "enrichment_qvalue", "positive_hit_fraction", "negative_hit_fraction")
# Known only on simulated data: shown when the run has a truth table.
TRUTH = ("seqlet_fraction_in_planted", "planted_motif")
# Columns of patterns.tsv on the page (every column is in the file, a download in the report).
DROPPED = ("task", "pattern", "sign", "n_seqlets", "length", "information", "enrichment",
           "enrichment_qvalue", "kept", "reason")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _q(value) -> str:
    return "" if _missing(value) else f"{value:.2g}"


def _fraction(value) -> str:
    return "NA" if _missing(value) else f"{value:.0%}"


def _matches_from_table(row) -> list[dict]:
    """Matches named in the table (best and second), for figures drawn without TomTom arrays."""
    found = []
    for prefix, q in (("match", "qvalue"), ("second_match", "second_match_qvalue")):
        if isinstance(row.get(f"{prefix}_id"), str):
            found.append(dict(id=row[f"{prefix}_id"], name=row[f"{prefix}_name"],
                              qvalue=row.get(q)))
    return found


def _motif_view(row, figures: dict, min_seqlets: int) -> dict:
    from peak2motif.presentation import data_uri

    fig = figures.get(row["pattern"], {})
    found = fig.get("matches") if "matches" in fig else _matches_from_table(row)
    well = row["n_seqlets"] >= 2 * min_seqlets
    return dict(
        pattern=row["pattern"], sign=row["sign"], n_seqlets=int(row["n_seqlets"]),
        length="" if _missing(row.get("length")) else int(row["length"]),
        forward=data_uri(fig["forward"]) if "forward" in fig else "",
        reverse=data_uri(fig["reverse"]) if "reverse" in fig else "",
        support="well supported" if well else "near the minimum",
        support_level="good" if well else "fair",
        matches=[dict(id=m["id"], name=m["name"], q=_q(m["qvalue"]),
                      logo=data_uri(m["logo"]) if m.get("logo") else "") for m in found],
        best_q="" if _missing(row.get("qvalue")) else f"q = {row['qvalue']:.2g}",
        enrichment="NA" if _missing(row["enrichment"]) else f"{row['enrichment']:.3g}",
        enrichment_q=_q(row["enrichment_qvalue"]),
        pos_hits=_fraction(row["positive_hit_fraction"]),
        neg_hits=_fraction(row["negative_hit_fraction"]),
    )


def motifs_html(
    table: pd.DataFrame,
    summary: pd.DataFrame,
    figures: dict[str, dict],
    *,
    tasks: list[str],
    database: str,
    params: dict,
    examples: str | Path | None = None,
) -> str:
    """A self-contained HTML page (logos as base64 PNG) of the motif table, task by task.

    ``figures`` is what :func:`draw_logos` returns (pattern -> its PNGs and top matches).
    The main table shows what a biologist reads first (logos, seqlets, matches, enrichment);
    the other columns of ``motifs.tsv`` go to a detail table below it, the truth columns only
    when the run has a truth table. ``summary`` lists every pattern TF-MoDISco found and why
    it was dropped. ``examples`` is the PNG of :func:`draw_examples`, shown below the table.
    """
    from peak2motif.presentation import render
    from peak2motif.presentation import table as html_table

    params = with_defaults("motifs", params)
    views = []
    for task in tasks:
        sub = table[table["task"] == task] if len(table) else table
        planted = [c for c in TRUTH if c in sub and not sub[c].isna().all()]
        detail = ["pattern", *[c for c in sub.columns if c not in MAIN and c not in TRUTH],
                  *planted]
        views.append(dict(
            name=task,
            no_motif=no_motif_sentence(params),
            motifs=[_motif_view(row, figures, int(params["min_seqlets"]))
                    for _, row in sub.iterrows()],
            planted=bool(planted),
            details=html_table(sub[detail]) if len(sub) else None,
        ))
    from peak2motif.presentation import data_uri

    return render("motifs.html", title="Motifs", p=params, database=database, tasks=views,
                  summary=html_table(summary[[c for c in DROPPED if c in summary]]),
                  examples=data_uri(examples) if examples and len(table) else "")
