"""Presentation: the HTML pages and figures that go into the Snakemake report.

One stylesheet and one page frame for every stage's HTML (data summary, metrics, checks,
motifs, provenance), and matplotlib set to its file-only backend in one place.
"""

from __future__ import annotations

import html

import pandas as pd

STYLE = (
    "body{font-family:sans-serif;margin:1em 2em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em 0}"
    "td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}"
    "th{background:#f4f4f4}"
    ".FAIL{color:#b00;font-weight:bold}.pass{color:#070}"
    ".note{color:#555;max-width:60em}"
    "img.logo{height:70px}"
)


def page(title: str, body: str) -> str:
    """A whole HTML document with the shared stylesheet; ``body`` is trusted HTML."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{body}</body></html>")


def table(df: pd.DataFrame, digits: int = 4, escape: bool = True) -> str:
    """A data frame as an HTML table (floats with ``digits`` significant digits)."""
    return df.to_html(index=False, border=0, escape=escape, na_rep="",
                      float_format=lambda v: f"{v:.{digits}g}")


def paragraph(text: str, cls: str = "note") -> str:
    return f"<p class='{cls}'>{html.escape(text)}</p>"


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
