"""End-to-end motif stage on the tiny config (simulated, two folds): the planted motifs are
recovered, on their sites. The realistic cases at default settings are test_realistic.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from memelite.io import read_meme
from peak2motif.motifs import MOTIF_COLUMNS

pytestmark = pytest.mark.slow

REQUIRED = ["task", "pattern", "sign", "n_seqlets", "consensus", "length",
            "match_id", "match_name", "match_class", "pvalue", "qvalue"]


def _margin_limit(column: str) -> int:
    """BENCHMARKS.md "Margins": the lowest of the tiny runs (seeds 0-2, native and AVX2
    kernels; bench/results/margins.tsv) minus their range, rounded down."""
    runs = pd.read_csv(REPO / "bench" / "results" / "margins.tsv", sep="\t")
    values = runs.loc[runs["case"] == "tiny", column].astype(float)
    assert len(values) >= 4, f"margins.tsv has {len(values)} tiny runs of {column}"
    return int(np.floor(values.min() - (values.max() - values.min())))


# Each planted motif's enrichment limit, from what the method reaches. Measured
# 4.87-6.24 for GATA1 (limit 3) and 24.7-32.5 for CTCF (limit 16): one limit of 3 for both
# would let CTCF lose 90 % of its enrichment unseen.
ENRICHMENT_LIMIT = {"GATA1": _margin_limit("enrichment_GATA1"),
                    "CTCF": _margin_limit("enrichment_CTCF")}


@pytest.fixture(scope="module")
def motifs_dir(tiny_run):
    return tiny_run / "results" / "tiny" / "motifs"


@pytest.fixture(scope="module")
def table(motifs_dir):
    return pd.read_csv(motifs_dir / "motifs.tsv", sep="\t")


def _family(matrix_id: str, release: str = "JASPAR2024") -> tuple[str, str]:
    from pyjaspar import jaspardb

    m = jaspardb(release=release).fetch_motif_by_id(matrix_id)
    return m.name, "; ".join(m.tf_family)


def test_motif_table_has_the_promised_columns(table):
    assert list(table.columns[: len(REQUIRED)]) == REQUIRED
    assert list(table.columns) == MOTIF_COLUMNS
    named = table["match_id"].notna()
    assert (table.loc[named, "qvalue"] < 0.05).all()


def test_every_planted_motif_is_recovered_on_planted_sites(tiny_run, table):
    planted = pd.read_csv(tiny_run / "resources" / "tiny" / "planted.tsv", sep="\t")
    assert not planted.empty
    for matrix_id in sorted(planted["motif_id"].unique()):
        name, family = _family(matrix_id)
        rows = table[
            ((table["match_name"].str.upper() == name.upper()) | (table["match_family"] == family))
            & (table["qvalue"] < 0.05)
        ]
        assert not rows.empty, f"{matrix_id} {name} not matched:\n{table.to_string()}"
        best = rows["seqlet_fraction_in_planted"].max()
        # Before the simulator scrubbed chance sites near summits this was 0.53-0.70 for
        # GATA1: the model rightly scored strong GATA matches that the truth table lacked.
        # Measured 0.944-0.958 (GATA1) and 0.959-0.978 (CTCF) over seeds and CPU kernels
        # (bench/results/margins.tsv); a machine of this kind once gave 0.895 for the earlier
        # single-model, test-split-only design.
        assert best >= 0.93, f"{name}: only {best:.2f} of the seqlets lie on planted sites"
        enrichment, limit = rows["enrichment"].max(), ENRICHMENT_LIMIT[name.upper()]
        assert enrichment >= limit, f"{name}: enrichment {enrichment:.1f} < {limit}"
        top = rows.loc[rows["seqlet_fraction_in_planted"].idxmax()]
        assert top["planted_motif"] == matrix_id


def test_meme_logos_and_html_cover_the_table(motifs_dir, table):
    meme = read_meme(str(motifs_dir / "motifs.meme"))
    assert list(meme) == table["pattern"].tolist()
    for pattern, ppm in meme.items():
        np.testing.assert_allclose(ppm.sum(axis=0), 1, atol=1e-6)
        assert (motifs_dir / "logos" / f"{pattern}.png").read_bytes()[:4] == b"\x89PNG"
    html = (motifs_dir / "motifs.html").read_text()
    assert html.count('<img class="logo"') == 2 * len(table)  # forward and reverse CWM
    assert (motifs_dir / "peaks" / "modisco.h5").stat().st_size > 0


def test_instances_lie_on_planted_sites(tiny_run, motifs_dir, table):
    """Issue 11: instances in genome coordinates (BED6+, bgzip + tabix) and a count table."""
    import pysam
    from peak2motif.motifs import overlap_planted

    planted = pd.read_csv(tiny_run / "resources" / "tiny" / "planted.tsv", sep="\t")
    bed = pd.read_csv(motifs_dir / "instances" / "all.bed.gz", sep="\t", header=None,
                      names=["chrom", "start", "end", "name", "score", "strand", "peak"])
    assert len(bed) > 0 and set(bed["strand"]) <= {"+", "-"}
    assert (bed["end"] - bed["start"] > 4).all()
    with pysam.TabixFile(str(motifs_dir / "instances" / "all.bed.gz")) as tbx:
        first = bed.iloc[0]
        assert len(list(tbx.fetch(first.chrom, first.start, first.end))) >= 1
    hit, _ = overlap_planted(bed[["chrom", "start", "end"]], planted)
    assert hit.mean() >= 0.98, hit.mean()  # measured 0.989-0.992 (bench/results/margins.tsv)
    counts = pd.read_csv(motifs_dir / "instance_counts.tsv", sep="\t", index_col=0)
    assert set(counts.columns) == set(table["pattern"]) and counts.to_numpy().sum() == len(bed)
    assert (motifs_dir / "instances.png").read_bytes()[:4] == b"\x89PNG"


