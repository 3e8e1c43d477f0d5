"""bigWig tracks of contributions in genome coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyBigWig
import pytest
from peak2motif.errors import InputError
from peak2motif.genome import chromosome_lengths
from peak2motif.tracks import per_base_track, write_contribution_track


def test_per_base_track_merges_overlaps():
    chroms = np.array(["chr1", "chr1", "chr2"])
    starts = np.array([10, 12, 0])
    values = np.array([[1.0, 2.0, 3.0, 4.0], [-10.0, 1.0, 1.0, 1.0], [5.0, 5.0, 5.0, 5.0]])
    sizes = {"chr1": 100, "chr2": 2}
    mean = per_base_track(chroms, starts, values, sizes, "mean")
    np.testing.assert_array_equal(mean["chr1"][0], [10, 11, 12, 13, 14, 15])
    np.testing.assert_allclose(mean["chr1"][1], [1, 2, -3.5, 2.5, 1, 1])
    np.testing.assert_array_equal(mean["chr2"][0], [0, 1])  # clipped to the chromosome
    top = per_base_track(chroms, starts, values, sizes, "max_abs")
    np.testing.assert_allclose(top["chr1"][1], [1, 2, -10, 4, 1, 1])
    with pytest.raises(InputError, match="track_overlap"):
        per_base_track(chroms, starts, values, sizes, "sum")


def test_write_contribution_track_skips_shuffles_and_negatives(tmp_path):
    from peak2motif import contributions

    genome = tmp_path / "genome.fa"
    genome.write_text(">chr1\n" + "A" * 60 + "\n>chr2\n" + "C" * 30 + "\n")
    assert chromosome_lengths(genome) == {"chr1": 60, "chr2": 30}  # .fai built by pyfaidx
    regions = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2", "chr2"], "start": [5, 5, 20, 0],
                            "end": [9, 9, 24, 4], "name": ["a", "shuffled", "c", "neg"],
                            "kind": ["peak", "shuffle", "peak", "background"],
                            "unit": ["chr1", "chr1", "chr2", "chr2"], "split_0": "test",
                            "peaks": [1.0, 0.0, 1.0, 0.0]})
    regions.to_csv(tmp_path / "regions.tsv", sep="\t", index=False)
    hyp = np.zeros((4, 4, 4), np.float32)
    hyp[:, :, 0] = [[1, 2, 3, 4], [9, 9, 9, 9], [-1, -2, -3, -4], [7, 7, 7, 7]]
    codes = np.zeros((4, 4), np.uint8)  # all A: hypothetical x one-hot keeps column A
    contributions.write(
        tmp_path / "c.h5",
        {"codes": codes, "region_index": np.arange(4), "fold": np.zeros(4, np.int16),
         "labels": np.zeros((4, 1), np.float32), "prediction": np.zeros((4, 1), np.float32)},
        {"peaks": {"rows": np.arange(4), "hypothetical": hyp, "logit": np.zeros(4),
                   "logit_delta": np.zeros(4), "positive": np.array([True, True, True, False])}},
        {"method": "x", "tasks": ["peaks"], "task_type": "binary"})
    n = write_contribution_track(tmp_path / "c.h5", tmp_path / "regions.tsv", genome,
                                 tmp_path / "c.bw")
    assert n == 8  # the shuffle (no coordinates of its own) and the negative are left out
    bw = pyBigWig.open(str(tmp_path / "c.bw"))
    assert bw.chroms() == {"chr1": 60, "chr2": 30}
    assert [v for *_, v in bw.intervals("chr1")] == [1, 2, 3, 4]
    assert bw.intervals("chr1")[0][:2] == (5, 6)
    assert [v for *_, v in bw.intervals("chr2")] == [-1, -2, -3, -4]
