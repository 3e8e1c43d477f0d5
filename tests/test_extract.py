"""Sequence extraction (peak2motif.extract)."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from genome_fixture import write_genome
from peak2motif.errors import InputError
from peak2motif.extract import dinuc_shuffle_codes, extract_sequences, iter_codes, window_stats
from peak2motif.sequences import decode, encode, read_split


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


def test_window_stats(fasta):
    regions = pd.DataFrame({"chrom": ["c2", "c1"], "start": [0, 6], "end": [4, 10]})
    gc, nfrac = window_stats(fasta, regions)
    assert gc.tolist() == [1.0, 0.5] and nfrac.tolist() == [0.0, 0.5]


def _dinucs(codes):
    return Counter(zip(codes[:-1].tolist(), codes[1:].tolist(), strict=True))


def test_dinuc_shuffle_shuffles_and_keeps_dinucleotides():
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 4, 200).astype(np.uint8)
    seq[50:53] = 4  # N is kept as its own symbol
    outs = [dinuc_shuffle_codes(seq, s) for s in range(5)]
    for out in outs:
        assert _dinucs(out) == _dinucs(seq)
        assert not np.array_equal(out, seq)
    assert not np.array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(dinuc_shuffle_codes(seq, 3), outs[3])  # seeded


def test_extract_writes_the_contract(tmp_path):
    genome = write_genome(tmp_path / "g.fa", {"a": 5000, "b": 5000, "c": 5000}, seed=2)
    regions = pd.DataFrame({
        "chrom": ["a", "a", "b", "c", "c"], "start": [100, 900, 50, 10, 10],
        "end": [150, 950, 100, 60, 60], "name": ["p1", "n1", "p2", "p3", "p3::dinuc_shuffle1"],
        "split": ["train", "train", "valid", "test", "test"],
        "t1": [1.0, 0, 1, 1, 0], "t2": [0.0, 0, 1, 0, 0]})
    regions.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    outs = {s: tmp_path / f"{s}.h5" for s in ("train", "valid", "test")}
    counts = extract_sequences(genome, tmp_path / "r.tsv", outs, "multitask", chunk_size=1,
                               seed=0)
    assert counts == {"train": 2, "valid": 1, "test": 2}
    seqs = {}
    for line in open(genome):
        if line.startswith(">"):
            name = line[1:].strip()
            seqs[name] = ""
        else:
            seqs[name] += line.strip()
    for split, path in outs.items():
        d = read_split(path)
        assert d.codes.dtype == np.uint8 and d.codes.shape[1] == 50
        assert d.tasks == ["t1", "t2"] and d.task_type == "multitask"
        for codes, lab, i in zip(d.codes, d.labels, d.region_index, strict=True):
            r = regions.iloc[i]
            assert r.split == split
            np.testing.assert_array_equal(lab, [r.t1, r.t2])
            expect = encode(seqs[r.chrom][r.start:r.end])
            if "::dinuc_shuffle" in r["name"]:
                assert not np.array_equal(codes, expect)
                assert _dinucs(codes) == _dinucs(expect)
            else:
                np.testing.assert_array_equal(codes, expect)


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
