"""Unit tests of peak2motif.logos: alignment of the match, PNGs, and the HTML page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from peak2motif import logos
from peak2motif.motifs import MOTIF_COLUMNS, PATTERN_COLUMNS

PNG = b"\x89PNG\r\n\x1a\n"
FILTERS = dict(min_seqlets=100, trim_threshold=0.5, min_length=5, min_information=4.0)


def test_information_matrix_gives_two_bits_to_a_certain_base():
    m = logos.information_matrix(np.array([[1.0, 0, 0, 0], [0.25] * 4]))
    # the filters' information content, with its pseudocount of 1e-3 per base: 1.97 bits
    assert m[0, 0] == pytest.approx(1.97, abs=0.01) and m[0, 1:].max() < 1e-2
    assert m[1].sum() == pytest.approx(0, abs=1e-6)


def test_aligned_target_reverse_complements_and_shifts():
    target = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])  # (4, 3): A C G
    t, x = logos.aligned_target(target, "+", 2)
    assert t.shape == (3, 4) and x.tolist() == [-2, -1, 0]
    t, x = logos.aligned_target(target, "-", -1)
    # reverse complement of ACG is CGT
    assert ["ACGT"[i] for i in t.argmax(axis=1)] == ["C", "G", "T"]
    assert x.tolist() == [1, 2, 3]


def test_draw_logo_writes_png_with_and_without_match(tmp_path):
    cwm = np.random.default_rng(0).normal(size=(8, 4))
    logos.draw_logo(tmp_path / "a.png", cwm, "alone")
    ppm = np.full((4, 10), 0.25)
    logos.draw_logo(tmp_path / "b.png", cwm, "pair", ppm, "match", strand="-", offset=-1)
    for name in ("a.png", "b.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG and len(data) > 1000


def test_html_says_plainly_that_no_motif_passed():
    page = logos.motifs_html(
        pd.DataFrame(columns=MOTIF_COLUMNS), pd.DataFrame(columns=PATTERN_COLUMNS), {},
        tasks=["a", "b"], database="JASPAR2024", params={},
    )
    assert page.count(
        "No motif is reported: no TF-MoDISco pattern passed the filters (at least 20 seqlets, "
        "trimming at 0.5 bits) and had hits enriched at least 2.0-fold over the matched "
        "negatives") == 2  # said for each task
    assert "Task a" in page and "Task b" in page and "<img" not in page


def _row(**kw):
    row = dict.fromkeys(MOTIF_COLUMNS)
    row.update(task="peaks", pattern="pos_patterns.pattern_0", sign="positive", n_seqlets=150,
               consensus="GATAAGa", length=7, match_id="MA0035.5", match_name="GATA1",
               pvalue=1e-9, qvalue=1e-6, enrichment=3.5, enrichment_qvalue=1e-20,
               positive_hit_fraction=0.7, negative_hit_fraction=0.2)
    row.update(kw)
    return row


def test_html_shows_both_strands_top_matches_and_moves_other_columns(tmp_path):
    for name in ("f", "r", "m1", "m2"):
        logos.draw_cwm(tmp_path / f"{name}.png", np.ones((6, 4)))
    figures = {"pos_patterns.pattern_0": {
        "forward": tmp_path / "f.png", "reverse": tmp_path / "r.png",
        "matches": [dict(id="MA0035.5", name="GATA1", qvalue=1e-6, logo=tmp_path / "m1.png"),
                    dict(id="MA0036.4", name="GATA2", qvalue=2e-5, logo=tmp_path / "m2.png")]}}
    summary = pd.DataFrame([{"pattern": "pos_patterns.pattern_0", "kept": True},
                            {"pattern": "pos_patterns.pattern_1", "kept": False,
                             "reason": "12 seqlets < min_seqlets 100"}])
    page = logos.motifs_html(pd.DataFrame([_row()]), summary, figures, tasks=["peaks"],
                             database="JASPAR2024", params={})
    main = page[page.index('<table class="motifs">'):]
    main = main[: main.index("</table>")]
    assert main.count("data:image/png;base64,") == 4  # forward, reverse, two matches
    assert "GATA1" in main and "1e-06" in main and "GATA2" in main and "2e-05" in main
    assert "Reverse complement" in main and "Seqlets" in main and "3.5" in main
    # the consensus is explained, and goes to the detail table with the other columns
    assert "lower-case letters" in page
    assert "consensus" not in main and "GATAAGa" in page
    assert "12 seqlets &lt; min_seqlets 100" in page
    assert "No motif is reported" not in page
    # no truth columns without a truth table
    assert "planted" not in page


def test_truth_columns_only_on_simulated_data():
    plain = logos.motifs_html(pd.DataFrame([_row()]), pd.DataFrame(columns=PATTERN_COLUMNS), {},
                              tasks=["peaks"], database="db", params={})
    truth = logos.motifs_html(
        pd.DataFrame([_row(seqlet_fraction_in_planted=0.9, planted_motif="MA0035.4")]),
        pd.DataFrame(columns=PATTERN_COLUMNS), {}, tasks=["peaks"], database="db", params={})
    assert "planted motif" not in plain and "planted motif" in truth and "MA0035.4" in truth
    # without TomTom arrays the page names the table's matches
    assert "GATA1" in plain


def test_top_matches_are_distinct_names_below_the_qvalue_limit():
    class DB:
        ids = ["a1", "a2", "b", "c", "d"]
        names = ["GATA1", "gata1", "TAL1", "KLF1", "SP1"]

        def __len__(self):
            return 5

    p = np.array([[1e-9, 1e-8, 1e-7, 1e-6, 1e-5]])
    q = np.array([[1e-6, 1e-5, 1e-4, 1e-2, 0.5]])
    z = np.zeros((1, 5), dtype=int)
    found = logos.top_matches(0, DB(), dict(pvalue=p, qvalue=q, strand=z, offset=z), 0.05)
    assert [m["id"] for m in found] == ["a1", "b", "c"]
    found = logos.top_matches(0, DB(), dict(pvalue=p, qvalue=q, strand=z, offset=z), 1e-3)
    assert [m["id"] for m in found] == ["a1", "b"]


def test_best_seqlet_takes_the_strongest_core_on_either_strand():
    from peak2motif.motifs import Pattern

    ppm = np.full((10, 4), 0.25)
    seqlets = pd.DataFrame({"example_idx": [7, 9, 8], "start": [0, 20, 5], "end": [10, 30, 15],
                            "is_revcomp": [False, True, False]})
    p = Pattern(name="p", sign="positive", ppm=ppm, cwm=ppm, hcwm=ppm, seqlets=seqlets,
                trim=(2, 6))
    actual = np.zeros((3, 40))
    actual[1, 24:28] = 1.0  # region 9's seqlet, reverse strand: core at [30-6, 30-2)
    actual[0, 2:6] = 0.5
    rows = {7: 0, 9: 1}  # region 8 was not explained
    assert logos.best_seqlet(p, actual, rows) == (1, 24, 28)
    actual[0, 2:6] = 2.0
    assert logos.best_seqlet(p, actual, rows) == (0, 2, 6)
    assert logos.best_seqlet(p, actual, {}) is None
