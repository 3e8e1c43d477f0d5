"""Sequence extraction (peak2motif.extract)."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from genome_fixture import write_genome
from peak2motif.errors import InputError
from peak2motif.extract import extract_sequences, iter_codes, window_stats
from peak2motif.sequences import decode, dinuc_shuffle_codes, encode
from peak2motif.splitfiles import read_split


@pytest.fixture()
def fasta(tmp_path):
    p = tmp_path / "g.fa"
    p.write_text(">c1\nACGTacgtNN\nRYACGT\n>c2\nGGGGCCCCAA\n")
    return p


def test_reads_windows_across_lines_soft_masked_and_iupac(fasta):
    chunks = list(iter_codes(fasta, np.array(["c1", "c1", "c2"]), np.array([2, 8, 3]),
                             np.array([8, 14, 9]), chunk_size=2))
    assert [len(r) for r, _ in chunks] == [2, 1]
    codes = np.vstack([c for _, c in chunks])
    assert [decode(c) for c in codes] == ["GTACGT", "NNNNAC", "GCCCCA"]


def test_iter_codes_matches_pyfaidx_in_the_given_order(tmp_path):
    import pyfaidx

    genome = write_genome(tmp_path / "g.fa", {"a": 5003, "b": 4000, "c": 777}, seed=4,
                          n_runs={"b": (100, 400)})
    rng = np.random.default_rng(0)
    chroms = rng.choice(["a", "b", "c"], 500)
    lengths = {"a": 5003, "b": 4000, "c": 777}
    starts = np.array([rng.integers(0, lengths[c] - 200 + 1) for c in chroms])
    starts[:3], chroms[:3] = [5003 - 200, 0, 777 - 200], ["a", "b", "c"]  # touch the ends
    chunks = list(iter_codes(genome, chroms, starts, starts + 200, chunk_size=64))
    assert [len(r) for r, _ in chunks] == [64] * 7 + [52]
    rows = np.concatenate([r for r, _ in chunks])
    codes = np.vstack([c for _, c in chunks])
    np.testing.assert_array_equal(rows, np.arange(500))
    fa = pyfaidx.Fasta(str(genome), as_raw=True, sequence_always_upper=False)
    for c, s, got in zip(chroms, starts, codes, strict=True):
        np.testing.assert_array_equal(got, encode(fa.faidx.fetch(c, int(s) + 1, int(s) + 200)))


def test_no_regions(fasta):
    assert list(iter_codes(fasta, np.array([]), np.array([]), np.array([]))) == []
    gc, nfrac = window_stats(fasta, pd.DataFrame({"chrom": [], "start": [], "end": []}))
    assert gc.shape == nfrac.shape == (0,)


def test_unknown_chromosome_fails_before_the_first_chunk(fasta):
    chunks = iter_codes(fasta, np.array(["c1", "c3"]), np.array([0, 0]), np.array([4, 4]),
                        chunk_size=1)
    with pytest.raises(InputError, match="chromosome 'c3' is not in the genome FASTA"):
        next(chunks)


def test_window_stats(fasta):
    regions = pd.DataFrame({"chrom": ["c2", "c1", "c1"], "start": [0, 6, 8],
                            "end": [4, 10, 12]})
    gc, nfrac = window_stats(fasta, regions)
    # c1[8:12] is "NNRY": no A/C/G/T at all (GC 0 by convention), all N-like
    assert gc.tolist() == [1.0, 0.5, 0.0] and nfrac.tolist() == [0.0, 0.5, 1.0]


def _dinucs(codes):
    return Counter(zip(codes[:-1].tolist(), codes[1:].tolist(), strict=True))


def test_dinuc_shuffle_shuffles_keeps_dinucleotides_and_n_in_place():
    seq = np.random.default_rng(0).integers(0, 4, 200).astype(np.uint8)
    seq[50:53] = 4
    outs = [dinuc_shuffle_codes(seq, np.random.RandomState(s)) for s in range(5)]
    for out in outs:
        assert _dinucs(out) == _dinucs(seq)
        assert not np.array_equal(out, seq)
        assert (out[50:53] == 4).all() and (out != 4).sum() == 197  # N stays where it was
    assert not np.array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(dinuc_shuffle_codes(seq, np.random.RandomState(3)), outs[3])


def test_extract_writes_the_contract(tmp_path):
    genome = write_genome(tmp_path / "g.fa", {"a": 5000, "b": 5000, "c": 5000}, seed=2)
    regions = pd.DataFrame({
        "chrom": ["a", "a", "b", "c", "c"], "start": [100, 900, 50, 10, 10],
        "end": [150, 950, 100, 60, 60], "name": ["p1", "n1", "p2", "p3", "shuffle1"],
        "kind": ["peak", "background", "peak", "peak", "shuffle"],
        "unit": ["a", "a", "b", "c", "c"],
        "split_0": ["train", "train", "valid", "test", "test"],
        "split_1": ["test", "test", "train", "valid", "valid"],
        "t1": [1.0, 0, 1, 1, 0], "t2": [0.0, 0, 1, 0, 0]})
    regions.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    outs = {k: {s: tmp_path / f"{k}_{s}.h5" for s in ("train", "valid", "test")}
            for k in (0, 1)}
    counts = extract_sequences(genome, tmp_path / "r.tsv", outs, "multitask", chunk_size=1,
                               seed=0)
    assert counts == {0: {"train": 2, "valid": 1, "test": 2},
                      1: {"train": 1, "valid": 2, "test": 2}}
    seqs = {}
    for line in open(genome):
        if line.startswith(">"):
            name = line[1:].strip()
            seqs[name] = ""
        else:
            seqs[name] += line.strip()
    shuffled = {}
    for k, files in outs.items():
        for split, path in files.items():
            d = read_split(path)
            assert d.codes.dtype == np.uint8 and d.codes.shape[1] == 50
            assert d.tasks == ["t1", "t2"] and d.task_type == "multitask"
            for codes, lab, i in zip(d.codes, d.labels, d.region_index, strict=True):
                r = regions.iloc[i]
                assert r[f"split_{k}"] == split
                np.testing.assert_array_equal(lab, [r.t1, r.t2])
                expect = encode(seqs[r.chrom][r.start:r.end])
                if r["kind"] == "shuffle":
                    assert not np.array_equal(codes, expect)
                    assert _dinucs(codes) == _dinucs(expect)
                    shuffled[k] = codes
                else:
                    np.testing.assert_array_equal(codes, expect)
    np.testing.assert_array_equal(shuffled[0], shuffled[1])  # the same shuffle in every fold


def test_missing_genome_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="genome FASTA not found"):
        list(iter_codes(tmp_path / "x.fa", np.array(["a"]), np.array([0]), np.array([5])))


def test_plain_gzip_genome_is_refused_with_a_fix(tmp_path):
    import gzip

    p = tmp_path / "g.fa.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(">a\nACGT\n")
    with pytest.raises(InputError, match="bgzip"):
        list(iter_codes(p, np.array(["a"]), np.array([0]), np.array([2])))


def test_bgzip_genome_reads_like_the_plain_one(fasta, tmp_path):
    from Bio import bgzf

    packed = tmp_path / "g.fa.gz"
    with bgzf.BgzfWriter(str(packed), "wb") as out:
        out.write(fasta.read_bytes())
    args = (np.array(["c1", "c2"]), np.array([2, 3]), np.array([8, 9]))
    plain = np.vstack([c for _, c in iter_codes(fasta, *args)])
    bgz = np.vstack([c for _, c in iter_codes(packed, *args)])
    np.testing.assert_array_equal(bgz, plain)
    assert [decode(c) for c in bgz] == ["GTACGT", "GCCCCA"]


@pytest.mark.parametrize("block_lines", [65536, 2])
def test_region_table_reads_like_pandas(tmp_path, monkeypatch, block_lines):
    """Extraction reads regions.tsv without pandas (its import costs more than the reads):
    the same columns and values as read_regions, in one block of lines or several."""
    from peak2motif import regiontable
    from peak2motif.regions import read_regions
    from peak2motif.regiontable import read_columns

    monkeypatch.setattr(regiontable, "BLOCK_LINES", block_lines)

    regions = pd.DataFrame({
        "chrom": ["chr10", "chr2", "1"], "start": [5, 0, 2_000_000_000],
        "end": [55, 50, 2_000_000_050], "name": ["a", "b", "c"],
        "kind": ["peak", "background", "shuffle"], "unit": ["chr10", "chr2:0-99", "1"],
        "split_0": ["train", "valid", "test"], "peaks": [1.0, 0.0, float("nan")],
        "other": [0.25, 1.5, 2.0]})
    regions.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    got, want = read_columns(tmp_path / "r.tsv"), read_regions(tmp_path / "r.tsv")
    assert list(got) == list(want.columns)
    for c in want.columns:
        if want[c].dtype.kind in "if":
            np.testing.assert_array_equal(got[c], want[c].to_numpy(got[c].dtype))
        else:
            assert got[c].tolist() == want[c].tolist()


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty"),
    ("chrom\tstart\tend\tname\tkind\tunit\tpeaks\nc\t1\t2\tn\tpeak\tc\t1\n", "split_0"),
    ("chrom\tstart\tend\tname\tkind\tunit\tsplit_0\nc\t1\t2\tn\tpeak\tc\n", "line 2 has 6"),
    ("chrom\tstart\tend\tname\tkind\tunit\tsplit_0\nc\tx\t2\tn\tpeak\tc\ttrain\n",
     "'start' is not numeric"),
])
def test_region_table_bad_input_names_the_file(tmp_path, text, says):
    from peak2motif.regiontable import read_columns

    (tmp_path / "r.tsv").write_text(text)
    with pytest.raises(InputError, match=says) as e:
        read_columns(tmp_path / "r.tsv")
    assert "r.tsv" in str(e.value) and "prepare_regions" in str(e.value)
