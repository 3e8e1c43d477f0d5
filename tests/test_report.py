"""The Snakemake HTML report of the tiny run: one self-contained file that a real headless
browser (Debian's chromium, installed by the test when missing) renders, with every stage.

Chromium runs with its networking pointed at a dead local proxy and every host name
unresolvable, so rendering proves the file needs nothing from outside.

The report is a React app; its views change only by clicks or through its global ``app``
object, and text inside its iframes is not in ``--dump-dom``. So the motif table is checked
twice: in the HTML that the report embeds for ``motifs.html``, and on a screenshot of the
report switched to that view by a script appended to a copy of the file.

Every page must fit a 1,400 px screen without horizontal scrolling, on its own and inside the
report (whose sidebar narrows it). A probe script added to a page measures
``document.documentElement.scrollWidth`` against ``innerWidth`` once it has loaded; inside the
report the page lives in an iframe of another origin (a data URI), so the probe posts its
numbers to the report, which writes them into its own DOM for ``--dump-dom``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CATEGORIES = [
    "1. Data", "2. Training", "3. Evaluation", "4. Contributions", "5. Motifs", "6. Checks",
    "7. Provenance",
]
MOTIFS = "results/tiny/motifs/motifs.html"


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("chromium is missing and cannot be installed here (needs root and apt)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=True, env=env, timeout=900,
        )
        exe = shutil.which("chromium")
    assert exe, "chromium not found after installing it"
    return exe


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    run_snakemake(tiny_run, "--report", str(out), configfile=tiny_run / "tiny.yaml")
    return out


def _script_json(html: str, script_id: str, var: str) -> dict:
    """The JSON object that the report assigns to ``var`` in <script id="script_id">."""
    start = html.index(f'<script id="{script_id}">')
    body = html[start : html.index("</script>", start)]
    return json.loads(body.split(f"var {var} = ", 1)[1].strip().rstrip(";"))


def _decode(data_uri: str) -> str:
    return base64.b64decode(data_uri.split("base64,", 1)[1]).decode()


def render(chromium: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run headless chromium on ``page`` with no outside network; ``extra`` picks the output."""
    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}", "--window-size=1400,1000",
        "--virtual-time-budget=5000", *extra, page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def screenshot(chromium: str, page: Path, png: Path) -> np.ndarray:
    from PIL import Image

    render(chromium, page, png.parent, f"--screenshot={png}")
    with Image.open(png) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def assert_not_blank(pixels: np.ndarray) -> None:
    assert pixels.shape[:2] == (1000, 1400)
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert pixels.std() > 20 and colours > 50, (pixels.std(), colours)


def test_report_is_one_self_contained_file(report):
    html = report.read_text()
    assert len(html) > 500_000  # the app, its libraries and the embedded results
    assert not [p for p in report.parent.iterdir() if p != report], "report wrote extra files"
    # Nothing is loaded from elsewhere: every script and style is inline, every image a data URI.
    assert not re.search(r"<script[^>]*\ssrc=", html)
    assert not re.search(r"<link[^>]*\shref=", html)
    srcs = re.findall(r"<img[^>]*\ssrc=[\"']([^\"']*)", html)
    assert all(s.startswith("data:") for s in srcs), srcs[:5]


def test_report_shows_every_stage(report):
    html = report.read_text()
    categories = _script_json(html, "categories", "categories")
    results = _script_json(html, "results", "results")
    missing = [c for c in CATEGORIES if c not in categories]
    assert not missing, f"categories missing from the report: {missing}"
    files = {c: [p for sub in categories[c].values() for p in sub] for c in CATEGORIES}
    assert any(p.endswith("summary.html") for p in files["1. Data"])
    assert any(p.endswith("gc.png") for p in files["1. Data"])
    assert any(p.endswith("training_curves.png") for p in files["2. Training"])
    assert any(p.endswith("metrics.html") for p in files["3. Evaluation"])
    assert any(p.endswith(".png") for p in files["4. Contributions"])
    assert "results/tiny/motifs/examples.png" in files["4. Contributions"]
    assert MOTIFS in files["5. Motifs"]
    assert any(p.endswith("checks.html") for p in files["6. Checks"])
    assert any(p.endswith("provenance.html") for p in files["7. Provenance"])
    # Every file the report shows is embedded, and tables are shown as HTML, not downloads.
    for paths in files.values():
        for path in paths:
            assert results[path]["data_uri"].startswith("data:"), path
    summary = _decode(results["results/tiny/sequences/summary.html"]["data_uri"])
    assert "<table" in summary


def test_report_embeds_the_motif_table_with_logos(report):
    results = _script_json(report.read_text(), "results", "results")
    motifs = _decode(results[MOTIFS]["data_uri"])
    table = motifs[motifs.index("<table") : motifs.index("</table>")]
    rows = re.findall(r"<tr>.*?</tr>", table, re.S)
    assert len(rows) >= 2, "the motif table has no motif row"
    assert "Pattern" in rows[0] and "Best matches" in rows[0] and "Reverse complement" in rows[0]
    assert re.search(r"<img class=\"logo\" src=\"data:image/(png|svg\+xml)", table), \
        "motif logos missing"
    # tiny plants GATA1 and CTCF: each is matched by name with a q-value
    assert "GATA" in table and "CTCF" in table and "q = " in table
    # the truth columns of the demo stay out of the main table
    assert "planted" not in table


def test_report_renders_in_headless_chromium(chromium, report, tmp_path):
    dom = render(chromium, report, tmp_path, "--dump-dom").stdout
    # The app ran: the navigation lists the categories and the workflow description is shown.
    for category in CATEGORIES:
        assert category in dom, f"{category} not rendered"
    assert "peak2motif" in dom
    pixels = screenshot(chromium, report, tmp_path / "report.png")
    assert_not_blank(pixels)


def test_motif_table_renders_in_the_report(chromium, report, tmp_path):
    """Switch the report to the motif table (as a click would) and take a screenshot."""
    html = report.read_text()
    show = (
        "<script>window.addEventListener('load', function () { setTimeout(function () {"
        f" var path = {json.dumps(MOTIFS)};"
        " app.setView({content: 'html', contentPath: results[path].data_uri,"
        " resultPath: path, category: '5. Motifs'}); }, 200); });</script>"
    )
    at = html.rindex("</body>")
    motif_view = tmp_path / "report_motifs.html"
    motif_view.write_text(html[:at] + show + html[at:])
    start = screenshot(chromium, report, tmp_path / "start.png")
    motifs = screenshot(chromium, motif_view, tmp_path / "motifs.png")
    assert_not_blank(motifs)
    # The content pane changed from the workflow page to the motif table.
    changed = np.abs(motifs[:, 300:] - start[:, 300:]).sum(axis=2) > 30
    assert changed.mean() > 0.05, changed.mean()
    # The same table, opened on its own, is real HTML with one row per motif.
    results = _script_json(html, "results", "results")
    page = tmp_path / "motifs.html"
    page.write_text(_decode(results[MOTIFS]["data_uri"]))
    dom = render(chromium, page, tmp_path, "--dump-dom").stdout
    assert dom.count("<tr") >= 2 and "<img" in dom


# --- every page fits a 1,400 px screen, alone and inside the report ---------------------------

PROBE = (
    "<script>window.addEventListener('load', function () { setTimeout(function () {"
    " var msg = 'fit ' + document.documentElement.scrollWidth + ' ' + window.innerWidth;"
    " if (window.parent !== window) { window.parent.postMessage(msg, '*'); }"
    " document.body.setAttribute('data-fit', msg); }, 300); });</script>"
)


def _with_script(html: str, script: str) -> str:
    at = html.rindex("</body>")
    return html[:at] + script + html[at:]


def _fit(dom: str, what: str) -> tuple[int, int]:
    found = re.search(r'data-fit="fit (\d+) (\d+)"', dom)
    assert found, f"{what}: the probe reported nothing"
    return int(found.group(1)), int(found.group(2))


def _html_pages(html: str) -> list[str]:
    results = _script_json(html, "results", "results")
    return sorted(p for p in results if p.endswith(".html"))


def test_every_page_fits_1400_px_on_its_own(chromium, report, tmp_path):
    html = report.read_text()
    results = _script_json(html, "results", "results")
    pages = _html_pages(html)
    assert MOTIFS in pages and len(pages) >= 7, pages
    for path in pages:
        page = tmp_path / Path(path).name
        page.write_text(_with_script(_decode(results[path]["data_uri"]), PROBE))
        scroll, inner = _fit(render(chromium, page, tmp_path, "--dump-dom").stdout, path)
        assert inner == 1400, inner
        assert scroll <= inner, f"{path} scrolls sideways at 1,400 px: {scroll} > {inner}"


def test_every_page_fits_inside_the_report(chromium, report, tmp_path):
    html = report.read_text()
    start = html.index('<script id="results">')
    end = html.index("</script>", start)
    results = _script_json(html, "results", "results")
    pages = _html_pages(html)
    for path in pages:
        results[path]["data_uri"] = "data:text/html;base64," + base64.b64encode(
            _with_script(_decode(results[path]["data_uri"]), PROBE).encode()).decode()
    probed = (html[:start] + '<script id="results">var results = ' + json.dumps(results)
              + ";" + html[end:])
    widths = {}
    for path in pages:
        category = next(c for c, subs in _script_json(html, "categories", "categories").items()
                        if any(path in files for files in subs.values()))
        show = (
            "<script>window.addEventListener('message', function (e) {"
            " document.body.setAttribute('data-fit', e.data);"
            " document.body.setAttribute('data-report',"
            " document.documentElement.scrollWidth + ' ' + window.innerWidth); });"
            " window.addEventListener('load', function () { setTimeout(function () {"
            f" var path = {json.dumps(path)};"
            " app.setView({content: 'html', contentPath: results[path].data_uri,"
            f" resultPath: path, category: {json.dumps(category)}}}); }}, 200); }});</script>"
        )
        view = tmp_path / f"report_{Path(path).stem}.html"
        view.write_text(_with_script(probed, show))
        dom = render(chromium, view, tmp_path, "--dump-dom").stdout
        scroll, inner = _fit(dom, path)
        report_scroll, report_inner = map(
            int, re.search(r'data-report="(\d+) (\d+)"', dom).groups())
        # the report's sidebar leaves the page less than the screen
        assert inner < 1400 and report_inner == 1400, (inner, report_inner)
        assert scroll <= inner, f"{path} scrolls sideways in the report: {scroll} > {inner}"
        assert report_scroll <= report_inner, (path, report_scroll)
        widths[path] = inner
    print("page widths inside the report:", widths)


# --- the report carries its files ---------------------------------------------------------


def test_report_carries_the_result_files_by_dataset(report):
    html = report.read_text()
    categories = _script_json(html, "categories", "categories")
    results = _script_json(html, "results", "results")
    wanted = {
        "3. Evaluation": ["evaluation/metrics.tsv"],
        "5. Motifs": ["motifs/motifs.tsv", "motifs/motifs.meme", "motifs/patterns.tsv",
                      "motifs/instances/all.bed.gz"],
        "6. Checks": ["contributions/checks.tsv"],
        "7. Provenance": ["provenance/config.yaml", "provenance/versions.tsv"],
        "8. Variants": ["variants/variants.tsv"],
    }
    for category, files in wanted.items():
        assert list(categories[category]) == ["tiny"], (category, list(categories[category]))
        held = categories[category]["tiny"]
        for f in files:
            path = f"results/tiny/{f}"
            assert path in held, f"{path} is not in the report under {category} / tiny"
            assert results[path]["data_uri"].startswith("data:"), path
    beds = [p for p in categories["5. Motifs"]["tiny"] if p.endswith(".bed.gz")]
    assert len(beds) >= 3, beds  # all.bed.gz and one per reported motif (GATA1, CTCF)
    meme = _decode(results["results/tiny/motifs/motifs.meme"]["data_uri"])
    assert "URL BLANK" not in meme and "nsites= 1\n" not in meme
    # every entry is labelled and filed under its dataset
    for category, subs in categories.items():
        assert list(subs) == ["tiny"], category
        for path in subs["tiny"]:
            assert results[path].get("labels", {}).get("result"), path
    # the bigWig is too large to embed: its caption gives the path instead
    assert not any(p.endswith(".bw") for p in results)
    captions = " ".join(r.get("caption", "") for r in results.values())
    assert "results/tiny/contributions/contributions.bw" in captions


def _landing_text(html: str) -> str:
    """The report's landing page (Snakemake renders rules/report/workflow.rst into the JS
    string ``workflow_desc``) as plain text."""
    desc = json.loads(re.search(r'workflow_desc = ("(?:[^"\\]|\\.)*")', html).group(1))
    assert "system-message" not in desc, "the landing text has reStructuredText errors"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", desc))


def test_landing_text_follows_the_run_config(tiny_run, report, tmp_path):
    default = _landing_text(report.read_text())
    assert "early stopping on the validation auROC" in default
    assert "DeepLIFT" in default.split("How to read")[0]
    out = tmp_path / "report.html"
    run_snakemake(tiny_run, "--report", str(out), "--config",
                  'training={"early_stopping": {"monitor": "val_loss"}}',
                  'attribution={"method": "integrated_gradients"}',
                  configfile=tiny_run / "tiny.yaml")
    changed = _landing_text(out.read_text())
    assert "early stopping on the validation loss" in changed
    assert "Contributions : integrated gradients" in changed
    assert "DeepLIFT" not in changed.split("How to read")[0]
