"""Sequence logos (logomaker) of discovered motifs and the HTML page that shows them.

Each kept pattern gets one PNG: its trimmed CWM (contribution weight matrix, ``(W, 4)``) on
top and, below it on the same x axis, the information logo of its best database match,
reverse-complemented when TomTom matched the reverse strand and shifted by TomTom's offset,
so aligned columns sit on top of each other.
"""

from __future__ import annotations

import base64
import html as html_lib
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


def draw_logos(kept, table: pd.DataFrame, db, logos_dir: str | Path) -> dict[str, Path]:
    """One PNG per kept pattern (``peak2motif.motifs.Pattern``) in ``logos_dir``.

    ``table`` is the motif table (one row per kept pattern, same order); ``db`` the
    ``MotifDatabase`` its matches come from. Returns pattern name -> PNG path.
    """
    logos_dir = Path(logos_dir)
    logos_dir.mkdir(parents=True, exist_ok=True)
    index = {mid: i for i, mid in enumerate(db.ids)}
    files = {}
    for p, (_, row) in zip(kept, table.iterrows(), strict=True):
        t0, t1 = p.trim
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
        path = logos_dir / f"{p.name}.png"
        draw_logo(
            path,
            p.cwm[t0:t1],
            title=f"{p.name}  ({p.n_seqlets} seqlets, {p.sign})",
            target_ppm=target,
            **kwargs,
        )
        files[p.name] = path
    return files


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" style="max-width:700px">'


def no_motif_sentence(params: dict) -> str:
    """What the page says when no pattern of a task is kept."""
    return (
        "No motif is reported: no TF-MoDISco pattern passed the filters (at least "
        f"{params['min_seqlets']} seqlets, trimming at {params['trim_threshold']} bits) and had "
        f"hits enriched at least {params['min_enrichment']}-fold over the matched negatives "
        f"(q < {params['enrichment_qvalue']}): the model found no reproducible sequence "
        "pattern that the negatives lack."
    )


SHOWN = ("sign", "n_seqlets", "consensus", "length", "match_id", "match_name", "match_family",
         "qvalue", "second_match_name", "positive_hit_fraction", "negative_hit_fraction",
         "enrichment", "enrichment_qvalue", "seqlet_fraction_in_planted", "planted_motif")


def _cell(column: str, value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "" if column.startswith(("match", "second")) else "NA"
    if column in ("qvalue", "enrichment_qvalue"):
        return f"{value:.2g}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _task_table(table: pd.DataFrame, logo_files: dict[str, Path]) -> str:
    esc = html_lib.escape
    shown = [c for c in SHOWN if c in table and not (
        c in ("seqlet_fraction_in_planted", "planted_motif") and table[c].isna().all())]
    # The logo goes second, so the report shows it without scrolling sideways.
    parts = ["<table><tr><th>pattern</th><th>logo (CWM, and best match below)</th>"
             + "".join(f"<th>{esc(c)}</th>" for c in shown) + "</tr>"]
    for _, row in table.iterrows():
        logo = logo_files.get(row["pattern"])
        cells = [f"<td>{esc(str(row['pattern']))}</td>",
                 f"<td>{_img(logo) if logo else ''}</td>"]
        cells += [f"<td>{esc(_cell(c, row[c]))}</td>" for c in shown]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(parts) + "</table>"


def motifs_html(
    table: pd.DataFrame,
    summary: pd.DataFrame,
    logo_files: dict[str, Path],
    *,
    tasks: list[str],
    database: str,
    params: dict,
) -> str:
    """A self-contained HTML page (logos as base64 PNG) of the motif table, task by task.

    ``summary`` lists every pattern TF-MoDISco found and why it was dropped.
    """
    from peak2motif.presentation import page
    from peak2motif.presentation import table as html_table

    esc = html_lib.escape
    params = with_defaults("motifs", params)
    parts = [
        "<h2>Motifs found by TF-MoDISco-lite</h2>",
        f"<p class='note'>A pattern is reported when it has at least {params['min_seqlets']} "
        f"seqlets, carries &ge; {params['min_information']} bits over &ge; "
        f"{params['min_length']} positions after trimming to positions with &ge; "
        f"{params['trim_threshold']} bits, and is <b>really there</b>: its hits (sequence "
        f"matches scoring &ge; {params['site_score']} of the matrix's range that carry the "
        "model's contribution) are enriched in the task's positives over the matched "
        "negatives the same fold models explained, at least "
        f"{params['min_enrichment']}-fold with Benjamini-Hochberg q &lt; "
        f"{params['enrichment_qvalue']}. Matches: TomTom (memelite) against "
        f"{esc(database)}, q-values ({esc(str(params['multiple_testing']))}), named when "
        f"q &lt; {params['max_qvalue']}.</p>",
    ]
    for task in tasks:
        sub = table[table["task"] == task] if len(table) else table
        if len(tasks) > 1:
            parts.append(f"<h3>Task {esc(task)}</h3>")
        if sub.empty:
            parts.append(f"<p><strong>{esc(no_motif_sentence(params))}</strong></p>")
            continue
        parts.append(_task_table(sub, logo_files))
        if sub["match_id"].isna().any():
            parts.append(
                "<p class='note'>Patterns without a match passed every filter but no "
                f"database motif matched them at q &lt; {params['max_qvalue']}: candidate new "
                "motifs, or motifs missing from the database.</p>")
    parts.append("<h3>Every pattern TF-MoDISco-lite reported, and why it was dropped</h3>")
    parts.append(html_table(summary) if len(summary)
                 else "<p>TF-MoDISco-lite reported no pattern.</p>")
    return page("Motifs", "\n".join(parts))
