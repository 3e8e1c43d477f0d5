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


def test_html_embeds_one_logo_per_motif(tmp_path):
    logos.draw_logo(tmp_path / "p.png", np.ones((6, 4)), "p")
    row = dict.fromkeys(MOTIF_COLUMNS)
    row.update(task="peaks", pattern="pos_patterns.pattern_0", sign="positive", n_seqlets=150,
               consensus="GATAAG", length=6, match_id="MA0035.5", match_name="GATA1",
               pvalue=1e-9, qvalue=1e-6)
    summary = pd.DataFrame([{"pattern": "pos_patterns.pattern_0", "kept": True},
                            {"pattern": "pos_patterns.pattern_1", "kept": False,
                             "reason": "12 seqlets < min_seqlets 100"}])
    page = logos.motifs_html(pd.DataFrame([row]), summary,
                             {"pos_patterns.pattern_0": tmp_path / "p.png"},
                             tasks=["peaks"], database="JASPAR2024", params={})
    assert page.count("data:image/png;base64,") == 1
    assert "GATA1" in page and "1e-06" in page
    assert "12 seqlets &lt; min_seqlets 100" in page or "12 seqlets < min_seqlets 100" in page
    assert "No motif is reported" not in page
