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

import matplotlib

matplotlib.use("Agg")

import logomaker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from peak2motif.config import with_defaults
from peak2motif.utils import atomic_output  # noqa: E402

log = logging.getLogger(__name__)

BASES = list("ACGT")


def _frame(matrix: np.ndarray, positions: np.ndarray) -> pd.DataFrame:
    """``(W, 4)`` -> logomaker's data frame (columns A, C, G, T; index = x positions)."""
    return pd.DataFrame(np.asarray(matrix, dtype=float), columns=BASES, index=positions)


def information_matrix(ppm: np.ndarray) -> np.ndarray:
    """``(W, 4)`` PPM -> letter heights in bits (probability x information of the column)."""
    p = np.clip(np.asarray(ppm, dtype=float), 1e-9, None)
    p = p / p.sum(axis=1, keepdims=True)
    ic = (p * np.log2(p / 0.25)).sum(axis=1, keepdims=True)
    return p * ic


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


def no_motif_sentence(filters: dict) -> str:
    """What the page says when no pattern passes the filters."""
    return (
        f"No motif passed the filters (min seqlets {filters['min_seqlets']}, trimming at "
        f"{filters['trim_threshold']} bits): the model found no reproducible sequence pattern."
    )


def motifs_html(
    table: pd.DataFrame,
    summary: pd.DataFrame,
    logo_files: dict[str, Path],
    *,
    filters: dict,
    database: str,
    params: dict,
) -> str:
    """A self-contained HTML page (logos as base64 PNG) of the motif table.

    ``summary`` lists every pattern TF-MoDISco found and why the filters dropped it.
    """
    esc = html_lib.escape
    params = with_defaults("motifs", params)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Motifs</title>",
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:middle;font-size:13px}"
        "th{background:#eee}</style></head><body>",
        "<h2>Motifs found by TF-MoDISco-lite</h2>",
        f"<p>Filters: at least {filters['min_seqlets']} seqlets; trimmed to positions with "
        f"&ge; {filters['trim_threshold']} bits; trimmed length &ge; {filters['min_length']}; "
        f"&ge; {filters['min_information']} bits in total. Matches: TomTom (memelite) against "
        f"{esc(database)}, Benjamini-Hochberg q-values "
        f"({esc(str(params['multiple_testing']))}), reported when "
        f"q &lt; {params['max_qvalue']}.</p>",
    ]
    if table.empty:
        parts.append(f"<p><strong>{esc(no_motif_sentence(filters))}</strong></p>")
    else:
        shown = [
            c
            for c in (
                "pattern",
                "sign",
                "n_seqlets",
                "consensus",
                "length",
                "match_id",
                "match_name",
                "match_family",
                "qvalue",
                "second_match_name",
                "seqlet_fraction_in_planted",
                "planted_motif",
            )
            if c in table and not (c in ("seqlet_fraction_in_planted", "planted_motif")
                                   and table[c].isna().all())
        ]
        # The logo goes second, so the report shows it without scrolling sideways.
        parts.append("<table><tr><th>pattern</th><th>logo (CWM, and best match below)</th>"
                     + "".join(f"<th>{esc(c)}</th>" for c in shown[1:]) + "</tr>")
        for _, row in table.iterrows():
            logo = logo_files.get(row["pattern"])
            cells = [f"<td>{esc(str(row['pattern']))}</td>",
                     f"<td>{_img(logo) if logo else ''}</td>"]
            for c in shown[1:]:
                v = row[c]
                if v is None or (isinstance(v, float) and np.isnan(v)):
                    text = "" if c.startswith(("match", "second")) else "NA"
                elif c in ("qvalue",):
                    text = f"{v:.2g}"
                else:
                    text = str(v)
                cells.append(f"<td>{esc(text)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        if table["match_id"].isna().any():
            parts.append(
                "<p>Patterns without a match passed the filters but no database motif "
                f"matched them at q &lt; {params['max_qvalue']}: candidate new "
                "motifs, or motifs missing from the database.</p>"
            )
    parts.append("<h3>Every pattern TF-MoDISco-lite reported</h3>")
    if summary.empty:
        parts.append("<p>TF-MoDISco-lite reported no pattern.</p>")
    else:
        parts.append(summary.to_html(index=False, border=0))
    parts.append("</body></html>")
    return "\n".join(parts)
