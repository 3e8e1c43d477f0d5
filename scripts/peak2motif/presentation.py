"""Presentation: the HTML pages and figures that go into the Snakemake report.

Every page the workflow writes (data summary, metrics, sweep, checks, motifs, instances,
variants, provenance) is a Jinja2 template in ``peak2motif/templates/`` that extends
``base.html``, which inlines the one stylesheet ``style.css``. Library modules pass plain
values (strings, numbers, data frames turned into :func:`table` dicts, images as data URIs)
and never build HTML themselves; the templates escape every value.

The pages are sized for a 1,400 px screen inside Snakemake's report (whose sidebar leaves
the page about 1,000 px): tables wrap their cells instead of growing wider than the page,
and images shrink to the page width. ``tests/test_report.py`` measures this in Chromium.

matplotlib is set to its file-only backend in one place (:func:`pyplot`).
"""

from __future__ import annotations

import base64
import math
import numbers
from functools import cache
from pathlib import Path

import pandas as pd

TEMPLATES = Path(__file__).with_name("templates")


@cache
def environment():
    """The Jinja2 environment of the page templates (autoescaping on, undefined names fail)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = number
    return env


def render(template: str, **context) -> str:
    """Render ``template`` (a file in ``templates/``) with ``context``; a whole HTML page."""
    return environment().get_template(template).render(**context)


def write_page(path: str | Path, template: str, **context) -> None:
    """Render ``template`` into ``path`` (written atomically)."""
    from peak2motif.utils import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(render(template, **context))


def number(value, digits: int = 3) -> str:
    """A cell value as text: floats with ``digits`` significant digits, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        if math.isnan(value):
            return ""
        return f"{value:.{digits}g}"
    return str(value)


def table(df: pd.DataFrame, digits: int = 4, headers: dict[str, str] | None = None,
          keys: bool = False) -> dict:
    """A data frame as ``{"columns", "numeric", "rows": [[text, ...], ...]}`` for the ``table``
    macro of ``macros.html``. ``headers`` renames columns for display; the others become
    readable words (``n_seqlets`` -> ``n seqlets``), or stay as they are with ``keys`` (for
    a page whose text names the columns)."""
    headers = headers or {}
    return {
        # a key may break after its underscores (a zero-width space), so wide tables fit
        "columns": [headers.get(str(c), str(c).replace("_", "_\u200b") if keys
                                else readable(str(c))) for c in df.columns],
        # numbers align right (``td.num`` in style.css); they still wrap when a table must
        # shrink to fit the page (with ``nowrap`` the motif detail table and the variants
        # table overflowed 1,120 and 1,400 px)
        "numeric": [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(
            df[c]) for c in df.columns],
        "rows": [[number(v, digits) for v in row] for row in df.itertuples(index=False)],
    }


def readable(name: str) -> str:
    """``n_seqlets`` -> ``n seqlets``: a column key as words for a table header."""
    return name.replace("_", " ")


def data_uri(path: str | Path, mime: str = "image/png") -> str:
    """A file as a ``data:`` URI, so the page carries its images."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:{mime};base64,{data}"


def checks_page(checks: pd.DataFrame, method: str, reference: str, n_references) -> str:
    """The contribution checks page from ``checks.tsv`` (columns check, value, threshold,
    status): whatever rows it has, checks with a limit first with a verdict, then the rows
    recorded without a limit (agreements, counts, seconds)."""
    limited = checks[checks["status"] != "recorded"]
    recorded = checks[checks["status"] == "recorded"]
    failed = limited[limited["status"] == "FAIL"]
    if len(failed):
        verdict = dict(level="bad", label=f"{len(failed)} of {len(limited)} checks failed:",
                       text=", ".join(failed["check"]) + ". The contributions are not used.")
    elif len(limited):
        verdict = dict(level="good", label=f"All {len(limited)} checks passed.",
                       text="The contributions add up, and the methods agree within the limits.")
    else:
        verdict = dict(level="none", label="No check has a limit in this run.", text="")
    rows = [dict(check=r.check, value=number(r.value, 4), threshold=number(r.threshold),
                 status=r.status) for r in limited.itertuples()]
    return render("checks.html", title="contribution checks", method=method,
                  reference=reference, n_references=n_references, verdict=verdict,
                  checks=rows, recorded=table(recorded[["check", "value"]])
                  if len(recorded) else None)


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
