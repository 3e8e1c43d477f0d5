"""Unit tests of peak2motif.presentation and the pages it renders: one template engine, no HTML
built from strings in the library, verdicts that follow the numbers, the report's landing text
made from the config, and the MEME file the report carries."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from peak2motif import presentation
from peak2motif.evaluate import auroc_verdict, best_epoch, metrics_page
from peak2motif.regions import gc_auroc, gc_verdict

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "scripts" / "peak2motif"
# An HTML tag, a DataFrame.to_html call or an HTML document start in Python source.
HTML_IN_CODE = re.compile(
    r"<(!doctype|html|head|body|table|thead|tbody|tr|td|th|div|p|h[1-6]|img|span|b|strong|"
    r"pre|style|br|code|ul|li|a)[\s>/]|\.to_html\(", re.I)


def test_no_html_is_built_from_strings_in_the_library():
    found = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
             for p in sorted(LIBRARY.rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if HTML_IN_CODE.search(line)]
    assert not found, "HTML built in Python; use a template in peak2motif/templates:\n" + \
        "\n".join(found)


def test_the_html_check_sees_html(tmp_path):
    """The pattern above catches the kinds of strings the library used to build."""
    for line in ['f"<h3>{caption}</h3>"', "\"<table><tr>\"", "df.to_html(index=False)",
                 "'<img src=\"data:'", "\"<!DOCTYPE html>\""]:
        assert HTML_IN_CODE.search(line), line
    for line in ['("<=", limit)', 'alt.startswith("<")', "# a < b"]:
        assert not HTML_IN_CODE.search(line), line


def test_every_page_extends_the_one_stylesheet():
    pages = [p for p in (LIBRARY / "templates").glob("*.html")
             if p.name not in ("base.html", "macros.html")]
    assert len(pages) >= 8
    for page in pages:
        assert '{% extends "base.html" %}' in page.read_text(), page.name
    assert "<style>" not in "".join(p.read_text() for p in pages)
    assert list((LIBRARY / "templates").glob("*.css")) == [LIBRARY / "templates" / "style.css"]


def test_values_are_escaped_and_numbers_formatted():
    t = presentation.table(pd.DataFrame({"n_seqlets": [885], "q": [1.234567e-7],
                                         "name": ["<b>x</b>"], "missing": [np.nan]}))
    assert t["columns"] == ["n seqlets", "q", "name", "missing"]
    assert t["rows"] == [["885", "1.235e-07", "<b>x</b>", ""]]
    page = presentation.render("table_page.html", title="t", heading="h <i>", note="",
                               table=t)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "h &lt;i&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "table.motifs" in page  # the stylesheet


def _metrics(folds: int, auroc: float) -> pd.DataFrame:
    rows = []
    names = [str(k) for k in range(folds)] + ["pooled"]
    for fold in names:
        for split in (["valid", "test"] if fold != "pooled" else ["test"]):
            for metric, value in (("auroc", auroc), ("auprc", 0.8), ("positive_fraction", 0.5)):
                rows.append(dict(task="peaks", split=split, fold=fold, metric=metric,
                                 value=value))
    return pd.DataFrame(rows)


def test_metrics_page_has_no_pivot_header_and_no_duplicate_pooled_row_with_one_fold():
    one = metrics_page(_metrics(1, 0.93), "binary")
    body = one[one.index("<table"):]
    assert "<th>metric</th>" not in body and "<th></th>" not in body
    assert "pooled" not in body and body.count("<tr>") == 3  # header, valid, test
    two = metrics_page(_metrics(2, 0.93), "binary")
    assert two[two.index("<table"):].count("pooled") == 1


@pytest.mark.parametrize("auroc, level", [(0.93, "good"), (0.7, "fair"), (0.57, "bad")])
def test_auroc_verdict_follows_the_value(auroc, level):
    v = auroc_verdict("peaks", auroc, 0.5, 0.6)
    assert v["level"] == level and f"{auroc:.3f}" in v["text"]
    page = metrics_page(_metrics(2, auroc), "binary")
    assert f'class="verdict {level}"' in page


def test_gc_auroc_and_verdict():
    rng = np.random.default_rng(0)
    same = rng.normal(0.45, 0.05, 4000)
    positive = np.arange(4000) < 2000
    assert gc_auroc(same, positive) == pytest.approx(0.5, abs=0.03)
    assert gc_verdict(gc_auroc(same, positive), 0.03)["level"] == "good"
    shifted = same + 0.05 * positive  # GC-rich peaks against plain background
    assert gc_auroc(shifted, positive) > 0.7
    assert gc_verdict(gc_auroc(shifted, positive), 0.4)["level"] == "bad"
    assert gc_verdict(float("nan"), float("nan"))["level"] == "none"
    # ties (a window's GC is a multiple of 1/L) count half, as in sklearn's auROC
    from sklearn.metrics import roc_auc_score

    tied = np.round(shifted * 200) / 200
    assert gc_auroc(tied, positive) == pytest.approx(roc_auc_score(positive, tied), abs=1e-12)


def test_best_epoch_follows_the_monitor():
    h = pd.DataFrame({"epoch": [1, 2, 3, 4], "val_loss": [0.5, 0.4, 0.45, 0.6],
                      "val_auroc": [0.7, 0.8, 0.9, 0.85]})
    assert best_epoch(h, "auto") == ("val_auroc", 3)
    assert best_epoch(h, "val_loss") == ("val_loss", 2)
    assert best_epoch(h.drop(columns="val_auroc"), "auto") == ("val_loss", 2)


def test_checks_page_separates_recorded_rows_and_says_what_failed():
    checks = pd.DataFrame([
        dict(check="summation_to_delta_max_abs_error", value=2e-6, threshold="<= 0.001",
             status="pass"),
        dict(check="logit_max_abs_diff", value=0.5, threshold="<= 0.001", status="FAIL"),
        dict(check="seconds", value=12.5, threshold="", status="recorded"),
    ])
    page = presentation.checks_page(checks, "deeplift", "dinuc_shuffle", 10)
    limited, recorded = page.split("Recorded without a limit")
    assert "summation_to_delta" in limited and "seconds" not in limited
    assert "seconds" in recorded and "12.5" in recorded
    assert 'class="verdict bad"' in page and "1 of 2 checks failed" in page
    ok = presentation.checks_page(checks[checks.status != "FAIL"], "deeplift", "zeros", 1)
    assert 'class="verdict good"' in ok and "All 1 checks passed" in ok


def test_meme_file_has_the_seqlet_count_and_no_url(tmp_path):
    from memelite.io import read_meme
    from peak2motif.motifs import Pattern, write_meme

    ppm = np.tile([[0.7, 0.1, 0.1, 0.1]], (8, 1))
    kept = [Pattern(task="t", name="pos_patterns.pattern_0", sign="positive", ppm=ppm,
                    cwm=ppm, hcwm=ppm, seqlets=pd.DataFrame({"example_idx": np.arange(885)}),
                    trim=(1, 7))]
    write_meme(tmp_path / "m.meme", kept)
    text = (tmp_path / "m.meme").read_text()
    assert "nsites= 885" in text and "URL" not in text
    back = read_meme(str(tmp_path / "m.meme"))
    assert list(back) == ["pos_patterns.pattern_0"]
    assert back["pos_patterns.pattern_0"].shape == (4, 6)


# --- the report's landing text ----------------------------------------------------------------


def landing_text(config: dict) -> str:
    """rules/report/workflow.rst rendered as Snakemake does (Jinja2, then docutils), with the
    schema defaults filled in as the workflow's validate() does."""
    from docutils.core import publish_parts
    from jinja2 import Environment
    from snakemake.utils import validate

    validate(config, str(REPO / "config" / "config.schema.yaml"))

    class Snakemake:
        pass

    Snakemake.config = config
    # the settings of Snakemake's own environment (snakemake/report/__init__.py)
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string((REPO / "rules/report/workflow.rst").read_text()).render(
        snakemake=Snakemake)
    html = publish_parts(text, writer="html",
                         settings_overrides={"halt_level": 2})["html_body"]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_landing_text_follows_the_config():
    base = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    default = landing_text(yaml.safe_load(yaml.safe_dump(base)))
    assert "the validation auROC" in default and "DeepLIFT" in default
    assert "10 dinucleotide-shuffled copies" in default and "JASPAR2024 CORE" in default
    changed = yaml.safe_load(yaml.safe_dump(base))
    changed["training"]["early_stopping"] = {"monitor": "val_loss", "patience": 4}
    changed["attribution"].update(method="integrated_gradients", reference="gc")
    changed["data"]["split"]["unit"] = "block"
    changed["motifs"] = {"meme_file": "my_motifs.meme"}
    text = landing_text(changed)
    assert "early stopping on the validation loss with patience 4" in text
    assert "integrated gradients" in text and "DeepLIFT" not in text.split("How to read")[0]
    assert "GC composition" in text and "dinucleotide" not in text
    assert "chromosome blocks" in text and "the MEME file my_motifs.meme" in text
    # every page of the report is explained
    for page in ("Data", "Training", "Evaluation", "Contributions", "Motifs", "Checks",
                 "Provenance", "Variants"):
        assert re.search(page + r" ?:", text.split("How to read this report")[1]), page


def test_landing_text_reads_a_datasets_own_override():
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["datasets"]["other"] = dict(config["datasets"]["tiny"],
                                       attribution={"method": "integrated_gradients"})
    text = landing_text(config)
    tiny, other = text.split("What this run did")[1].split(" other ", 1)
    assert "DeepLIFT" in tiny and "integrated gradients" in other
