"""Region preparation (peak2motif.regions) on tiny genomes made in the test."""

import gzip

import numpy as np
import pandas as pd
import pytest
from genome_fixture import narrowpeak, spread_peaks, write_genome, write_peaks
from peak2motif.errors import InputError
from peak2motif.regions import (
    assign_folds,
    assign_splits,
    prepare_regions,
    read_bed,
    resolve_task_type,
    split_units,
)

LENGTHS = {"chrA": 40_000, "chrB": 40_000, "chrC": 40_000, "chrD": 40_000}


@pytest.fixture()
def genome(tmp_path):
    return write_genome(tmp_path / "g.fa", LENGTHS, seed=0, n_runs={"chrD": (20_000, 21_000)})


def _run(tmp_path, genome, peaks, ds=None, data=None):
    out = tmp_path / "out"
    regions = prepare_regions(genome, peaks, out / "regions.tsv", out / "summary.tsv",
                              out / "summary.html", out / "gc.png", dataset="t",
                              dataset_config=ds or {}, data_config=data or {})
    summary = dict(pd.read_csv(out / "summary.tsv", sep="\t").itertuples(index=False))
    return regions, summary


# ---- reading BED files -------------------------------------------------------------


def test_read_bed_formats_headers_gzip_and_summits(tmp_path):
    lengths = {"chr1": 10_000}
    text = ("track name=x\nbrowser position chr1\n# comment\n\n"
            "chr1\t100\t200\n"                                      # BED3: midpoint
            "chr1\t300\t500\tp2\t0\t+\n"                            # BED6: midpoint
            "chr1\t1000\t1400\tp3\t9\t.\t7.5\t3\t2\t50\n"          # narrowPeak summit
            "chr1\t2000\t2400\tp4\t9\t.\t7.5\t3\t2\t-1\n"           # no summit: midpoint
            "chr1 3000 3100\n")                                     # spaces accepted
    gz = tmp_path / "p.bed.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(text)
    df = read_bed(gz, lengths)
    assert df["summit"].tolist() == [150, 400, 1050, 2200, 3050]
    assert df["line"].tolist() == [5, 6, 7, 8, 9]
    assert df["signal"].iloc[2] == 7.5 and np.isnan(df["signal"].iloc[0])
    assert df["name"].iloc[0] == "chr1:100-200" and df["name"].iloc[2] == "p3"


@pytest.mark.parametrize(
    "line, match",
    [
        ("chr1\t100", r"line 2: malformed line.*at least 3 columns.*Fix: BED columns"),
        ("chr1\tabc\t200", r"line 2: malformed line.*integers"),
        ("chr1\t-5\t200", r"line 2: negative coordinate.*Fix: BED coordinates are 0-based"),
        ("chr1\t500\t200", r"line 2: start 500 is greater than end 200.*Fix: swap"),
        ("1\t100\t200", r"line 2: chromosome '1' is not in the genome.*with a 'chr' prefix"),
        ("chrX\t100\t200", r"line 2: chromosome 'chrX'.*exclude_chromosomes"),
        ("chr1\t100\t200\tn\t0\t.\t1\t1\t1\t500", r"line 2: summit offset 500 lies outside"),
    ],
)
def test_read_bed_errors_name_file_line_and_fix(tmp_path, line, match):
    bed = write_peaks(tmp_path / "bad.bed", [], header="chr1\t1\t50\n" + line + "\n")
    with pytest.raises(InputError, match=match) as err:
        read_bed(bed, {"chr1": 10_000})
    assert str(bed) in str(err.value)


def test_read_bed_suggests_stripping_chr_prefix(tmp_path):
    bed = write_peaks(tmp_path / "p.bed", [("chr2", 1, 50)])
    with pytest.raises(InputError, match="without the 'chr' prefix"):
        read_bed(bed, {"1": 100, "2": 100})


def test_regression_needs_signal(tmp_path):
    bed = write_peaks(tmp_path / "p.bed", [("chr1", 1, 50)])
    with pytest.raises(InputError, match="line 1: regression needs a numeric signalValue"):
        read_bed(bed, {"chr1": 100}, need_signal=True)


# ---- splits ----------------------------------------------------------------------------


def test_automatic_split_is_deterministic_and_whole_chromosomes():
    counts = {"scaffold_7": 50, "contig-2": 40, "ctg9": 30, "u1": 10, "u2": 10, "empty": 0}
    a = assign_splits(counts, 0.15, 0.15)
    assert a == assign_splits(dict(reversed(counts.items())), 0.15, 0.15)
    assert set(a.values()) == {"train", "valid", "test"} and set(a) == set(counts)
    assert a["empty"] == "train"
    train = sum(counts[c] for c, s in a.items() if s == "train")
    assert train >= 0.4 * sum(counts.values())


def test_given_split_lists_win_and_are_checked():
    counts = {"a": 10, "b": 10, "c": 10, "d": 10}
    a = assign_splits(counts, valid=["d"], test=["c"])
    assert a["d"] == "valid" and a["c"] == "test" and a["a"] == a["b"] == "train"
    with pytest.raises(InputError, match="valid_chromosomes.*both"):
        assign_splits(counts, valid=["a"], test=["a"])
    with pytest.raises(InputError, match="test_chromosomes"):
        assign_splits(counts, test=["zz"])
    with pytest.raises(InputError, match="at least 3.*unit: block"):
        assign_splits({"a": 5, "b": 5})


def test_folds_hold_out_every_unit_exactly_once():
    counts = {f"c{i}": 10 + i for i in range(12)} | {"empty": 0}
    plan = assign_folds(counts, 5, valid_fraction=0.15)
    assert len(plan) == 5
    tests = [sorted(u for u, s in fold.items() if s == "test") for fold in plan]
    held = [u for t in tests for u in t]
    assert sorted(held) == sorted(u for u in counts if counts[u] > 0)  # each unit once
    total = sum(counts.values())
    for fold in plan:
        assert set(fold.values()) == {"train", "valid", "test"} and fold["empty"] == "train"
        share = {s: sum(counts[u] for u, v in fold.items() if v == s) / total
                 for s in ("train", "valid", "test")}
        assert 0.15 <= share["test"] <= 0.25 and share["valid"] >= 0.15
    assert plan == assign_folds(dict(reversed(counts.items())), 5)
    with pytest.raises(InputError, match="5 folds need at least 6 units.*unit: block"):
        assign_folds({"a": 1, "b": 1, "c": 1}, 5)


def test_too_few_chromosomes_are_cut_into_blocks():
    win = pd.DataFrame({"chrom": ["chr"] * 3, "summit": [10, 500_000, 2_900_000]})
    units = split_units(win, {"chr": 3_000_000}, folds=3)
    assert units.kind == "block" and "1 chromosome(s) carry peaks" in units.reason
    labels = units.of(win["chrom"], win["summit"])
    assert labels[0] == f"chr:0-{units.block_size}" and len(set(labels)) == 3
    assert labels[2].endswith("-3000000")  # the last block ends at the chromosome end
    many = pd.DataFrame({"chrom": [f"c{i}" for i in range(6)], "summit": [5] * 6})
    assert split_units(many, {f"c{i}": 100 for i in range(6)}, folds=3).kind == "chromosome"
    assert split_units(many, {f"c{i}": 100 for i in range(6)}, folds=4).kind == "block"


def test_resolve_task_type():
    assert resolve_task_type("auto", 1) == "binary"
    assert resolve_task_type("auto", 3) == "multitask"
    assert resolve_task_type("regression", 1) == "regression"


# ---- the whole stage ---------------------------------------------------------------------


def test_binary_with_gc_matched_negatives(tmp_path, genome):
    rows = spread_peaks(LENGTHS, per_chrom=8)
    rows += [rows[0]]                                    # a duplicate
    rows += [narrowpeak("chrA", 30, half=20, name="edge")]      # window off the chromosome start
    rows += [narrowpeak("chrD", 20_500, name="gap")]    # window full of N
    rows += [narrowpeak("chrB", 30_000, name="black")]  # blacklisted
    peaks = write_peaks(tmp_path / "p.narrowPeak", rows, header="track name=p\n")
    black = write_peaks(tmp_path / "bl.bed", [("chrB", 29_900, 30_100), ("chrZ", 1, 5)])
    regions, summary = _run(tmp_path, genome, {"peaks": peaks},
                            ds={"blacklist": str(black)},
                            data={"sequence_length": 100, "negatives": {"margin": 200}})
    assert list(regions.columns) == ["chrom", "start", "end", "name", "kind", "unit", "split_0",
                                     "peaks"]
    assert set(regions["kind"]) == {"peak", "background"}
    assert summary["dropped_duplicate"] == "1" and summary["dropped_off_chromosome_end"] == "1"
    assert summary["dropped_too_many_n"] == "1" and summary["dropped_blacklist"] == "1"
    pos, neg = regions[regions["peaks"] == 1], regions[regions["peaks"] == 0]
    assert len(pos) == 32 and len(neg) == 32
    assert ((regions["end"] - regions["start"]) == 100).all()
    # negatives keep `margin` clear of every peak
    for r in neg.itertuples():
        near = [p for p in rows if p[0] == r.chrom and p[1] - 200 < r.end and r.start < p[2] + 200]
        assert not near
    # one split per chromosome
    assert (regions.groupby("chrom")["split_0"].nunique() == 1).all()
    assert summary["split_unit"] == "chromosome" and summary["negatives_margin"] == "200"
    assert float(summary["gc_ks_statistic"]) < 0.4
    assert (tmp_path / "out" / "gc.png").stat().st_size > 1000
    assert "dropped blacklist" in (tmp_path / "out" / "summary.html").read_text()


def test_multitask_label_matrix_by_overlap(tmp_path, genome):
    a = [narrowpeak("chrA", 5000, half=100, name="a1"), narrowpeak("chrB", 5000, name="a2"),
         narrowpeak("chrC", 5000, name="a3"), narrowpeak("chrD", 5000, name="a4")]
    b = [narrowpeak("chrA", 5030, half=100, name="b1"),   # overlaps a1's window > 50%
         narrowpeak("chrA", 9000, name="b2"),              # b only
         narrowpeak("chrB", 5000, name="b3"),              # same summit as a2: merged
         narrowpeak("chrC", 5190, half=10, name="b4")]     # touches a3's window by < 50%
    pa = write_peaks(tmp_path / "a.np", a)
    pb = write_peaks(tmp_path / "b.np", b)
    regions, summary = _run(tmp_path, genome, {"A": pa, "B": pb},
                            data={"sequence_length": 200})
    lab = regions.set_index("name")[["A", "B"]]
    assert lab.loc["a1"].tolist() == [1, 1] and lab.loc["b1"].tolist() == [1, 1]
    assert lab.loc["b2"].tolist() == [0, 1]
    assert lab.loc["b4"].tolist() == [0, 1] and lab.loc["a3"].tolist() == [1, 0]
    merged = [n for n in ("a2", "b3") if n in lab.index]
    assert len(merged) == 1 and lab.loc[merged[0]].tolist() == [1, 1]
    assert summary["dropped_duplicate"] == "1" and summary["task_type"] == "multitask"
    negs = regions[regions["name"].str.startswith("neg")]
    assert (negs[["A", "B"]] == 0).all().all()


def test_multiclass_and_regression_labels(tmp_path, genome):
    a = write_peaks(tmp_path / "a.np", spread_peaks(LENGTHS, 3, seed=1))
    b = write_peaks(tmp_path / "b.np", [narrowpeak(c, 20_000 + 7000 * (c == "chrD"),
                                                   name=f"b_{c}") for c in LENGTHS])
    regions, _ = _run(tmp_path, genome, {"A": a, "B": b}, ds={"task": "multiclass"})
    assert list(regions.columns[7:]) == ["A", "B", "background"]
    assert (regions[["A", "B", "background"]].sum(1) == 1).all()
    assert regions.set_index("name").loc["b_chrA"].tolist()[-3:] == [0, 1, 0]
    reg, _ = _run(tmp_path, genome, {"A": a}, ds={"task": "regression"})
    peaks = pd.read_csv(a, sep="\t", header=None).set_index(3)
    row = reg[reg["name"] == "chrA_p0"].iloc[0]
    assert row["A"] == pytest.approx(np.log1p(peaks.loc["chrA_p0", 6]), rel=1e-5)
    assert (reg[reg["name"].str.startswith("neg")]["A"] == 0).all()


@pytest.mark.parametrize("strategy", ["flanks", "dinuc_shuffle"])
def test_other_negative_strategies(tmp_path, genome, strategy):
    peaks = write_peaks(tmp_path / "p.np", spread_peaks(LENGTHS, 5, spacing=5000))
    regions, summary = _run(tmp_path, genome, {"peaks": peaks},
                            data={"negatives": {"strategy": strategy, "ratio": 2,
                                                "flank_shift": 1500, "margin": 100}})
    neg = regions[regions["peaks"] == 0]
    assert summary["negatives_strategy"] == strategy
    assert len(neg) >= 30
    if strategy == "dinuc_shuffle":
        assert (neg["kind"] == "shuffle").all()
        pos = regions[regions["peaks"] == 1]
        at = set(zip(pos["chrom"], pos["start"], strict=True))
        assert all(k in at for k in zip(neg["chrom"], neg["start"], strict=True))
    else:
        assert (neg["kind"] == "background").all() and neg["name"].str.startswith("neg").all()


def test_empty_after_filtering_is_an_error(tmp_path, genome):
    peaks = write_peaks(tmp_path / "p.bed", [("chrD", 20_100, 20_900)])
    with pytest.raises(InputError, match=r"no windows left.*too_many_n=1.*Fix"):
        _run(tmp_path, genome, {"peaks": peaks})
    assert not (tmp_path / "out" / "regions.tsv").exists()


def test_excluded_chromosomes_leave_nothing(tmp_path, genome):
    peaks = write_peaks(tmp_path / "p.bed", [("chrA", 100, 300), "# x".split()])
    with pytest.raises(InputError, match="no peaks left"):
        _run(tmp_path, genome, {"peaks": peaks}, ds={"exclude_chromosomes": ["chrA"]})


def test_missing_genome(tmp_path):
    peaks = write_peaks(tmp_path / "p.bed", [("chrA", 100, 300)])
    with pytest.raises(InputError, match=r"genome FASTA not found.*Fix: check the 'genome'"):
        _run(tmp_path, tmp_path / "nope.fa", {"peaks": peaks})


def test_folds_give_every_region_one_test_fold(tmp_path, genome):
    peaks = write_peaks(tmp_path / "p.np", spread_peaks(LENGTHS, 6, spacing=5000))
    regions, summary = _run(tmp_path, genome, {"peaks": peaks},
                            data={"split": {"folds": 3}, "negatives": {"margin": 100}})
    cols = ["split_0", "split_1", "split_2"]
    assert [c for c in regions.columns if c.startswith("split")] == cols
    assert ((regions[cols] == "test").sum(1) <= 1).all()
    assert ((regions[cols] == "test").sum(1) == 1)[regions["kind"] == "peak"].all()
    assert summary["split_unit"] == "block" and summary["folds"] == "3"
    for c in cols:  # a unit (block) is in one split per fold
        assert (regions.groupby("unit")[c].nunique() == 1).all()


def test_genome_mostly_peaks_falls_back_and_says_so(tmp_path):
    """Issue 8: GC-matched negatives on a genome with little room (once a raw KeyError)."""
    lengths = {f"c{i}": 6000 for i in range(4)}
    g = write_genome(tmp_path / "small.fa", lengths, seed=3)
    rows = [narrowpeak(c, s, half=100, name=f"{c}_{s}") for c in lengths
            for s in range(400, 5800, 320)]
    peaks = write_peaks(tmp_path / "p.np", rows)
    regions, summary = _run(tmp_path, g, {"peaks": peaks}, data={"sequence_length": 200})
    assert int(summary["negatives_margin"]) < 500
    n_pos = (regions["kind"] == "peak").sum()
    assert (regions["kind"] != "peak").sum() == n_pos
    assert int(summary["negatives_fallback_shuffles"]) > 0
    assert (regions["kind"] == "shuffle").sum() == int(summary["negatives_fallback_shuffles"])
    with pytest.raises(InputError, match=r"room for only \d+ of \d+ gc_matched negatives.*"
                                         r"Fix: set data: negatives: fallback: true"):
        _run(tmp_path, g, {"peaks": peaks}, data={"negatives": {"fallback": False}})
