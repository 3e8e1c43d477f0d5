"""The data stage of the real workflow on tests/configs/tiny.yaml (two folds; tiny_run)."""

import numpy as np
import pandas as pd
import pyfaidx
import pytest
from peak2motif.sequences import encode
from peak2motif.splitfiles import read_split

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tiny_run):
    seqdir = tiny_run / "results" / "tiny" / "sequences"
    regions = pd.read_csv(seqdir / "regions.tsv", sep="\t")
    summary = dict(pd.read_csv(seqdir / "summary.tsv", sep="\t").itertuples(index=False))
    return tiny_run, seqdir, regions, summary


def test_negatives_match_the_positives_gc(tiny):
    _, _, _, summary = tiny
    assert abs(float(summary["gc_mean_positives"]) - float(summary["gc_mean_negatives"])) < 0.01
    assert float(summary["gc_ks_statistic"]) < 0.15
    assert int(summary["negatives"]) == int(summary["positives"])


def test_every_planted_motif_lies_inside_its_positive_window(tiny):
    workdir, _, regions, _ = tiny
    planted = pd.read_csv(workdir / "resources" / "tiny" / "planted.tsv", sep="\t")
    assert len(planted) > 500
    pos = regions[regions["kind"] == "peak"].set_index("name")
    win = pos.loc[planted["peak"]]
    assert (win["chrom"].to_numpy() == planted["chrom"].to_numpy()).all()
    assert (win["start"].to_numpy() <= planted["start"].to_numpy()).all()
    assert (planted["end"].to_numpy() <= win["end"].to_numpy()).all()


def test_folds_keep_units_together_and_test_each_region_once(tiny):
    _, _, regions, summary = tiny
    folds = ["split_0", "split_1"]
    for c in folds:
        assert (regions.groupby("unit")[c].nunique() == 1).all()
        assert set(regions[c]) == {"train", "valid", "test"}
    tested = (regions[folds] == "test").sum(1)
    assert (tested[regions["kind"] == "peak"] == 1).all()
    assert summary["folds"] == "2"


def test_split_files_agree_with_regions(tiny):
    workdir, seqdir, regions, _ = tiny
    for fold in (0, 1):
        seen = []
        base = workdir / "results" / "tiny" / "folds" / str(fold) / "sequences"
        for split in ("train", "valid", "test"):
            d = read_split(base / f"{split}.h5")
            assert d.tasks == ["peaks"] and d.task_type == "binary"
            assert d.sequence_length == 200
            sub = regions.iloc[d.region_index]
            assert (sub[f"split_{fold}"] == split).all()
            np.testing.assert_array_equal(d.labels[:, 0], sub["peaks"].to_numpy())
            assert (d.codes == 4).mean() < 0.01
            seen.append(d.region_index)
        assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(regions)))
    # the stored codes are the genome's bases at each region (lower case read as bases)
    fa = pyfaidx.Fasta(str(workdir / "resources" / "tiny" / "genome.fa"), as_raw=True)
    d = read_split(workdir / "results/tiny/folds/0/sequences/valid.h5")
    for row in np.random.default_rng(0).choice(len(d.codes), size=50, replace=False):
        r = regions.iloc[d.region_index[row]]
        np.testing.assert_array_equal(d.codes[row], encode(fa[r.chrom][r.start:r.end]))
