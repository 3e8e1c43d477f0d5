"""peak2motif.signal: count tracks from BAM, fragments and bigWig, against counts worked out by
hand; the window reader against pyBigWig; streaming; every bad input; the workflow rules."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyBigWig
import pysam
import pytest
from peak2motif.config import SCHEMA_PATH, check_config
from peak2motif.errors import InputError
from peak2motif.signal import bam as bam_reader
from peak2motif.signal import bigwig, checks, fragments, make_signal_track, read_windows

SIZES = {"chr1": 1000, "chr2": 500}

# (name, chrom, 0-based start, CIGAR, flag, MAPQ): what each read tests is in its comment.
READS = [
    ("r1", "chr1", 100, "10M", 0, 60),        # forward: 5' end = start
    ("r15", "chr1", 100, "10M", 0, 60),       # same base again: count 2
    ("r2", "chr1", 200, "5M2D5M", 16, 60),    # reverse, deletion: 5' end = 200 + 12 - 1
    ("r3", "chr1", 300, "3S10M", 16, 60),     # reverse, soft clip: 5' end = 309
    ("r4", "chr1", 400, "10M", 0, 10),        # MAPQ 10
    ("r5", "chr1", 500, "10M", 1024, 60),     # duplicate
    ("r6", "chr1", 600, "10M", 256, 60),      # secondary
    ("r7", "chr1", 700, "10M", 2048, 60),     # supplementary
    ("r8", "chr1", 800, "10M", 512, 60),      # QC fail
    ("r9", "chr1", 850, "10M", 4, 0),         # unmapped, placed
    ("r10", "chr1", 2, "10M", 16, 60),        # reverse near the start: 5' end 11
    ("r11", "chr1", 1, "10M", 0, 60),         # forward at base 1
    ("r12", "chr2", 0, "3M", 16, 60),         # 5' end 2: ATAC -4 falls off the chromosome
    ("r13", "chr2", 495, "5M", 0, 60),        # ATAC +4 = 499, the last base
    ("r14", "chr2", 496, "4M", 0, 60),        # ATAC +4 = 500, off the chromosome
    ("p1", "chr2", 100, "10M", 99, 60),       # proper pair, mate 1 forward
    ("p1", "chr2", 200, "10M", 147, 60),      # proper pair, mate 2 reverse: 5' end 209
    ("p2", "chr2", 300, "10M", 97, 60),       # paired, not proper
    ("p3", "chr2", 350, "10M", 75, 60),       # proper flag but mate unmapped
]

# worked out by hand from the comments above (0-based base -> count)
CHIP = {
    ("chr1", "plus"): {1: 1, 100: 2}, ("chr1", "minus"): {11: 1, 211: 1, 309: 1},
    ("chr2", "plus"): {100: 1, 495: 1, 496: 1}, ("chr2", "minus"): {2: 1, 209: 1},
}
ATAC = {"chr1": {5: 1, 7: 1, 104: 2, 207: 1, 305: 1}, "chr2": {104: 1, 205: 1, 499: 1}}
DNASE = {"chr1": {1: 1, 12: 1, 100: 2, 212: 1, 310: 1},
         "chr2": {3: 1, 100: 1, 210: 1, 495: 1, 496: 1}}


def write_bam(path: Path, reads=READS, sizes=SIZES, sort=True, index=True) -> Path:
    header = {"HD": {"VN": "1.6", "SO": "coordinate" if sort else "unsorted"},
              "SQ": [{"SN": c, "LN": n} for c, n in sizes.items()]}
    names = list(sizes)
    raw = path.with_suffix(".raw.bam") if sort else path
    with pysam.AlignmentFile(str(raw), "wb", header=header) as out:
        for name, chrom, start, cigar, flag, mapq in reads:
            a = pysam.AlignedSegment()
            a.query_name, a.flag, a.mapping_quality = name, flag, mapq
            a.reference_id, a.reference_start, a.cigarstring = names.index(chrom), start, cigar
            a.query_sequence = "A" * a.infer_query_length()
            a.query_qualities = pysam.qualitystring_to_array("I" * len(a.query_sequence))
            if flag & 1:
                a.next_reference_id, a.next_reference_start = names.index(chrom), start
            out.write(a)
    if sort:
        pysam.sort("-o", str(path), str(raw))
        raw.unlink()
    if index:
        pysam.index(str(path))
    return path


def write_fasta(path: Path, sizes=SIZES) -> Path:
    path.write_text("".join(f">{c}\n{'ACGT' * (n // 4)}{'A' * (n % 4)}\n" for c, n in
                            sizes.items()))
    return path


def bigwig_counts(path) -> dict:
    """{chrom: {base: value}} read with pyBigWig's intervals (independent of our reader)."""
    bw = pyBigWig.open(str(path))
    out = {}
    for chrom in bw.chroms():
        out[chrom] = {}
        for start, end, value in bw.intervals(chrom) or []:
            for base in range(start, end):
                out[chrom][base] = value
    bw.close()
    return out


@pytest.fixture
def genome(tmp_path):
    return write_fasta(tmp_path / "genome.fa")


@pytest.fixture
def bam(tmp_path):
    return write_bam(tmp_path / "reads.bam")


# --- BAM ------------------------------------------------------------------------------------


def test_chip_counts_five_prime_ends_per_strand(tmp_path, genome, bam):
    outs = [tmp_path / "out" / "t.plus.bw", tmp_path / "out" / "t.minus.bw"]
    summary = make_signal_track(str(bam), str(genome), "chip", [str(p) for p in outs])
    for strand, path in zip(("plus", "minus"), outs, strict=True):
        got = bigwig_counts(path)
        for chrom in SIZES:
            assert got[chrom] == CHIP[(chrom, strand)], (chrom, strand)
    assert summary["counts"][str(outs[0])] == 6 and summary["counts"][str(outs[1])] == 5
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("assay, expected", [("atac", ATAC), ("dnase", DNASE)])
def test_cut_site_shifts_on_both_strands(tmp_path, genome, bam, assay, expected):
    out = tmp_path / f"{assay}.bw"
    make_signal_track(str(bam), str(genome), assay, [str(out)])
    assert bigwig_counts(out) == expected


@pytest.mark.parametrize("options, chrom, extra", [
    ({"min_mapq": 0}, "chr1", {400: 1}),                    # r4's MAPQ 10 passes
    ({"duplicates": "keep"}, "chr1", {500: 1}),             # r5 counts
    ({"proper_pairs": False}, "chr2", {300: 1, 350: 1}),    # p2 and p3 count
])
def test_each_filter_can_be_relaxed(tmp_path, genome, bam, options, chrom, extra):
    outs = [str(tmp_path / "p.bw"), str(tmp_path / "m.bw")]
    make_signal_track(str(bam), str(genome), "chip", outs, settings=options)
    # the relaxed filter adds exactly its reads, and nothing else changes
    assert bigwig_counts(outs[0])[chrom] == {**CHIP[(chrom, "plus")], **extra}
    assert bigwig_counts(outs[1])[chrom] == CHIP[(chrom, "minus")]


def test_secondary_supplementary_qcfail_unmapped_never_count(tmp_path, bam):
    stats: dict = {}
    batches = list(bam_reader.cut_sites(str(bam), SIZES, min_mapq=0, keep_duplicates=True,
                                        proper_pairs=False, stats=stats))
    starts = {int(p) for b in batches for p in b.plus}
    assert not {600, 700, 800, 850} & starts
    assert stats["secondary or supplementary"] == 2
    assert stats["QC fail"] == 1 and stats["unmapped"] == 1
    assert stats["records"] == len(READS)


def test_bam_and_fragments_give_the_same_atac_cut_sites(tmp_path, genome):
    """A read pair over [a, b) and its 10x fragment [a + 4, b - 5) name the same two bases."""
    a, b = 120, 260
    reads = [("f", "chr1", a, "30M", 99, 60), ("f", "chr1", b - 30, "30M", 147, 60)]
    bam_path = write_bam(tmp_path / "pair.bam", reads)
    frag = tmp_path / "frags.tsv"
    frag.write_text(f"chr1\t{a + 4}\t{b - 5}\tAAACGT-1\t3\n")
    make_signal_track(str(bam_path), str(genome), "atac", [str(tmp_path / "bam.bw")])
    make_signal_track(str(frag), str(genome), "atac", [str(tmp_path / "frag.bw")])
    expected = {a + 4: 1, b - 5: 1}
    assert bigwig_counts(tmp_path / "bam.bw")["chr1"] == expected
    assert bigwig_counts(tmp_path / "frag.bw")["chr1"] == expected


# --- fragments -------------------------------------------------------------------------------


FRAGMENTS = [("chr1", 10, 50, "A", 1), ("chr1", 10, 80, "B", 5), ("chr1", 40, 50, "A", 2),
             ("chrUn", 5, 9, "A", 1), ("chr2", 0, 500, "C", 1), ("chr2", 300, 310, "C", 1)]


@pytest.mark.parametrize("compress", [False, True])
def test_fragments_count_both_ends_once_each(tmp_path, genome, compress):
    text = "# comment line as Cell Ranger ATAC 2 writes\n" + "".join(
        "\t".join(map(str, f)) + "\n" for f in FRAGMENTS)
    path = tmp_path / ("f.tsv.gz" if compress else "f.tsv")
    if compress:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    make_signal_track(str(path), str(genome), "atac", [str(tmp_path / "f.bw")])
    # start and end of each fragment; the count column is ignored; chr2's end 500 is off
    assert bigwig_counts(tmp_path / "f.bw") == {
        "chr1": {10: 2, 40: 1, 50: 2, 80: 1}, "chr2": {0: 1, 300: 1, 310: 1}}


# --- streaming ---------------------------------------------------------------------------------


def test_streams_chromosome_by_chromosome_in_small_chunks(tmp_path, genome, monkeypatch):
    """With chunks of a few records and tiny flushes, the output is the same, every batch is
    small, and a chromosome is finished before the next begins."""
    rng = np.random.default_rng(0)
    reads = [(f"r{i}", c, int(rng.integers(0, SIZES[c] - 20)), "20M",
              int(rng.choice([0, 16])), 60) for i, c in enumerate(["chr1"] * 400 + ["chr2"] * 200)]
    path = write_bam(tmp_path / "many.bam", reads)
    whole = [str(tmp_path / "a.plus.bw"), str(tmp_path / "a.minus.bw")]
    make_signal_track(str(path), str(genome), "chip", whole)

    monkeypatch.setattr(bam_reader, "CHUNK_BYTES", 400)  # about 4 records a chunk
    monkeypatch.setattr(bigwig, "FLUSH_CUTS", 8)
    batches = list(bam_reader.cut_sites(str(path), SIZES))
    assert len(batches) > 100
    assert max(len(b.plus) + len(b.minus) for b in batches) <= 6
    chroms = [b.chrom for b in batches]
    assert chroms == sorted(chroms)  # chr1's batches, then chr2's
    last_chr1 = max(i for i, c in enumerate(chroms) if c == "chr1")
    assert batches[last_chr1].final_below is None  # chr1 is finished before chr2
    peak_pending = []
    original = bigwig._Runs.add

    def spy(self, *args):
        original(self, *args)
        peak_pending.append(max(self.n_pending))

    monkeypatch.setattr(bigwig._Runs, "add", spy)
    small = [str(tmp_path / "b.plus.bw"), str(tmp_path / "b.minus.bw")]
    make_signal_track(str(path), str(genome), "chip", small)
    assert max(peak_pending) <= 8 + 6  # a flush threshold plus one batch, not a chromosome
    for w, s in zip(whole, small, strict=True):
        assert bigwig_counts(w) == bigwig_counts(s)


def test_fragments_stream_in_small_chunks(tmp_path, genome, monkeypatch):
    """Many fragments read 7 lines at a time, flushed every 8 cut sites: the counts are
    those of every start and end, worked out with bincount."""
    rng = np.random.default_rng(4)
    rows = []
    for chrom, size in SIZES.items():
        starts = np.sort(rng.integers(0, size - 60, 300))
        rows += [(chrom, a, a + int(rng.integers(20, 60))) for a in starts.tolist()]
    path = tmp_path / "many.tsv"
    path.write_text("".join(f"{c}\t{a}\t{b}\tBC\t1\n" for c, a, b in rows))
    monkeypatch.setattr(fragments, "CHUNK_ROWS", 7)
    monkeypatch.setattr(bigwig, "FLUSH_CUTS", 8)
    make_signal_track(str(path), str(genome), "atac", [str(tmp_path / "f.bw")])
    got = bigwig_counts(tmp_path / "f.bw")
    for chrom, size in SIZES.items():
        ends = [v for c, a, b in rows if c == chrom for v in (a, b)]
        want = np.bincount(ends, minlength=size)
        assert got[chrom] == {i: float(v) for i, v in enumerate(want) if v}


# --- the window reader -------------------------------------------------------------------------


def test_window_reader_matches_pybigwig_values(tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for name in ("plus", "minus"):
        path = tmp_path / f"{name}.bw"
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader(list(SIZES.items()), maxZooms=0)
        for chrom, size in SIZES.items():
            pos = np.unique(rng.integers(0, size, size // 3))
            bw.addEntries(chrom, pos, values=rng.integers(1, 9, len(pos)).astype(float), span=1)
        bw.close()
        paths.append(path)
    chroms = ["chr1", "chr2", "chr1", "chr2", "chrX", "chr1"]
    starts = np.array([0, 100, 950, -20, 5, 400])
    got = read_windows(paths, chroms, starts, 100)
    assert got.shape == (6, 100, 2) and got.dtype == np.float32
    for s, path in enumerate(paths):
        bw = pyBigWig.open(str(path))
        for i, (chrom, start) in enumerate(zip(chroms, starts, strict=True)):
            want = np.zeros(100)
            if chrom in SIZES:
                a, b = max(start, 0), min(start + 100, SIZES[chrom])
                want[a - start:b - start] = np.nan_to_num(bw.values(chrom, int(a), int(b)))
            np.testing.assert_array_equal(got[i, :, s], want)
        bw.close()
    assert got.sum() > 0


# --- bad input -------------------------------------------------------------------------------


def _bigwig(path, sizes, values):
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()), maxZooms=0)
    chrom = next(iter(sizes))
    bw.addEntries(chrom, np.arange(len(values)), values=np.asarray(values, float), span=1)
    bw.close()
    return path


def test_bam_with_other_chromosome_names_names_the_chr_prefix(tmp_path, genome):
    path = write_bam(tmp_path / "nochr.bam", [("r", "1", 5, "10M", 0, 60)],
                     sizes={"1": 1000, "2": 500})
    with pytest.raises(InputError, match=r"nochr\.bam.*none of its chromosome names.*'chr' "
                                         r"prefix"):
        checks.check_bam(str(path), SIZES, str(genome))
    with pytest.raises(InputError, match="'chr' prefix"):
        make_signal_track(str(path), str(genome), "chip", [str(tmp_path / "a"),
                                                           str(tmp_path / "b")])


def test_bam_of_another_assembly_is_refused(tmp_path, genome):
    path = write_bam(tmp_path / "other.bam", READS[:1], sizes={"chr1": 2000, "chr2": 500})
    with pytest.raises(InputError, match="chr1 is 2,000 bp long here but 1,000"):
        checks.check_bam(str(path), SIZES, str(genome))


def test_bigwig_with_other_chromosome_names(tmp_path, genome):
    path = _bigwig(tmp_path / "x.bw", {"1": 1000}, [1, 2])
    with pytest.raises(InputError, match=r"x\.bw.*'chr' prefix"):
        checks.check_source(str(path), SIZES, str(genome), "chip", "datasets: d: signal")


def test_bam_without_index(tmp_path, genome):
    path = write_bam(tmp_path / "noidx.bam", index=False)
    with pytest.raises(InputError, match=r"noidx\.bam.*no index.*samtools index"):
        checks.check_bam(str(path), SIZES, str(genome))


def test_unsorted_bam(tmp_path, genome):
    reads = [("a", "chr1", 500, "10M", 0, 60), ("b", "chr1", 100, "10M", 0, 60)]
    path = write_bam(tmp_path / "unsorted.bam", reads, sort=False, index=False)
    with pytest.raises(InputError, match="sorted by unsorted"):
        checks.check_bam(str(path), SIZES, str(genome))
    with pytest.raises(InputError, match="not sorted by position.*samtools sort"):
        list(bam_reader.cut_sites(str(path), SIZES))


@pytest.mark.parametrize("lines, where", [
    (["chr1\t50\t90", "chr1\t10\t40"], "line 2 starts before"),
    (["chr1\t10\t40", "chr2\t5\t60", "chr1\t50\t90"], "chr1 are not together"),
])
def test_unsorted_fragments_nothing_half_written(tmp_path, genome, lines, where):
    path = tmp_path / "frags.tsv"
    path.write_text("".join(f"{line}\tBC\t1\n" for line in lines))
    with pytest.raises(InputError, match=f"frags.tsv.*{where}.*sort -k1,1 -k2,2n"):
        checks.check_fragments_head(str(path), SIZES, str(genome))
    out = tmp_path / "out" / "f.bw"
    out.parent.mkdir()
    out.write_text("a track from an earlier run")
    with pytest.raises(InputError, match=where):
        make_signal_track(str(path), str(genome), "atac", [str(out)])
    assert out.read_text() == "a track from an earlier run"  # not lost, not half-replaced
    assert [p.name for p in out.parent.iterdir()] == ["f.bw"]  # no temporary files left


def test_fragments_with_other_chromosome_names(tmp_path, genome):
    path = tmp_path / "f.tsv"
    path.write_text("1\t10\t50\tBC\t1\n2\t10\t50\tBC\t1\n")
    with pytest.raises(InputError, match="lack the 'chr' prefix"):
        checks.check_fragments_head(str(path), SIZES, str(genome))


@pytest.mark.parametrize("values, problem", [([1.0, float("nan")], "NaN"),
                                             ([1.0, -2.0], "negative values")])
def test_bigwig_with_nan_or_negative_values(tmp_path, genome, values, problem):
    path = _bigwig(tmp_path / "bad.bw", SIZES, values)
    with pytest.raises(InputError, match=rf"bad\.bw.*{problem}"):
        checks.check_source(str(path), SIZES, str(genome), "chip", "datasets: d: signal")
    ok = _bigwig(tmp_path / "ok.bw", SIZES, [1.0, 0.0, 3.0])
    checks.check_source(str(ok), SIZES, str(genome), "chip", "datasets: d: signal")


def test_signal_with_no_reads_in_most_peaks(tmp_path):
    track = _bigwig(tmp_path / "t.bw", SIZES, [0, 0, 5])  # reads only at base 2 of chr1
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("chr1\t0\t10\nchr1\t100\t200\nchr1\t300\t400\nchr2\t0\t100\n")
    with pytest.raises(InputError, match=r"only 25% of 4 peaks.*same experiment"):
        checks.signal_in_peaks([str(track)], str(peaks), min_fraction=0.5)
    assert checks.signal_in_peaks([str(track)], str(peaks), min_fraction=0.25)[
        "with_reads"] == 0.25


def test_unknown_assay_and_fragments_for_chip():
    with pytest.raises(InputError, match="unknown assay 'rna'.*chip, atac, dnase"):
        checks.check_assay("rna", "bam", "x.bam")
    with pytest.raises(InputError, match="f.tsv.gz.*Tn5.*assay: atac"):
        checks.check_assay("chip", "fragments", "f.tsv.gz")
    cfg = {"datasets": {"d": {"genome": "g.fa", "peaks": "p.bed", "signal": "s.bam",
                              "assay": "rna"}}}
    with pytest.raises(InputError, match="datasets: d: assay"):
        check_config(cfg, SCHEMA_PATH)


def test_signal_for_some_tasks_and_not_others():
    ds = {"peaks": {"a": "a.bed", "b": "b.bed"}, "signal": {"a": "a.bam"}}
    with pytest.raises(InputError, match="datasets: x: signal.*some tasks.*no signal for: b"):
        checks.signal_sources(ds, ["a", "b"], "x")
    with pytest.raises(InputError, match="one signal for 2 tasks"):
        checks.signal_sources({"signal": "a.bam"}, ["a", "b"], "x")
    pair = {"plus": "p.bw", "minus": "m.bw"}
    assert checks.signal_sources({"signal": pair}, ["peaks"], "x") == {"peaks": pair}
    assert checks.signal_sources({"signal": {"a": "a.bam", "b": pair}}, ["a", "b"]) == {
        "a": "a.bam", "b": pair}
    with pytest.raises(InputError, match="control track is for ChIP-seq only"):
        checks.control_sources({"signal": "a.tsv.gz", "assay": "atac", "control": "c.bam"},
                               ["peaks"], "x")


# --- real reads (ataqv's test BAMs: GM12878 ATAC-seq, hg19) -----------------------------------

ATAQV = Path("/usr/share/doc/ataqv/examples/testdata")


@pytest.fixture(scope="module")
def ataqv_bams() -> Path:
    if not (ATAQV / "SRR891275.bam").exists():
        if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which(
                "apt-get"):
            pytest.skip("ataqv's test BAMs are missing and cannot be installed (needs apt)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "ataqv"],
                       check=True, env=env, timeout=900)
    assert (ATAQV / "SRR891275.bam").exists()
    return ATAQV


def test_real_atac_bam_against_pysam_and_samtools(tmp_path, ataqv_bams):
    path = str(ataqv_bams / "SRR891275.bam")
    with pysam.AlignmentFile(path) as fh:
        sizes = dict(zip(fh.references, fh.lengths, strict=True))
        want = {"plus": [], "minus": []}
        for r in fh.fetch(until_eof=True):  # the same rule, written with pysam's objects
            if (r.flag & 3844 or r.mapping_quality < 30
                    or (r.is_paired and (r.mate_is_unmapped or not r.is_proper_pair))):
                continue
            if r.is_reverse:
                want["minus"].append((r.reference_name, r.reference_end - 1 - 4))
            else:
                want["plus"].append((r.reference_name, r.reference_start + 4))
    stats: dict = {}
    batches = list(bam_reader.cut_sites(path, sizes, (4, -4), stats=stats))
    got = {"plus": sorted((b.chrom, int(p)) for b in batches for p in b.plus),
           "minus": sorted((b.chrom, int(p)) for b in batches for p in b.minus)}
    assert got == {k: sorted(v) for k, v in want.items()}
    # htslib's own count of the same filter
    n = int(pysam.view("-c", "-F", "3852", "-f", "2", "-q", "30", path).strip())
    assert stats["kept"] == n == len(want["plus"]) + len(want["minus"]) > 100
    # without its index: refused
    copy = tmp_path / "SRR891275.bam"
    shutil.copy(ataqv_bams / "SRR891275.bam", copy)
    with pytest.raises(InputError, match="no index.*samtools index"):
        checks.check_bam(str(copy), sizes)
    # the second BAM is sorted by read name: refused, then accepted once sorted and indexed
    name_sorted = str(ataqv_bams / "SRR891278.bam")
    with pytest.raises(InputError, match="sorted by queryname, not by position"):
        checks.check_bam(name_sorted, sizes)
    pysam.sort("-o", str(tmp_path / "sorted.bam"), name_sorted)
    pysam.index(str(tmp_path / "sorted.bam"))
    checks.check_bam(str(tmp_path / "sorted.bam"), sizes)
    assert sum(1 for _ in bam_reader.cut_sites(str(tmp_path / "sorted.bam"), sizes)) > 3
    # against a FASTA that names chromosomes 1, 2, ... (Ensembl style)
    ensembl = {c.removeprefix("chr"): n for c, n in sizes.items()}
    with pytest.raises(InputError, match="'chr' prefix the FASTA lacks"):
        checks.check_bam(path, ensembl)


# --- the workflow: the rules, the start-up checks ---------------------------------------------


def _workflow_inputs(tmp_path):
    from genome_fixture import write_genome

    genome_sizes = {"chr1": 3000, "chr2": 3000}
    write_genome(tmp_path / "genome.fa", genome_sizes, seed=0)
    rng = np.random.default_rng(3)
    peaks = [("chr1", 500, 700), ("chr1", 1500, 1700), ("chr2", 800, 1000)]
    (tmp_path / "peaks.bed").write_text("".join(f"{c}\t{a}\t{b}\n" for c, a, b in peaks))
    reads = [(f"r{i}", c, int(rng.integers(a - 30, b)), "25M", int(rng.choice([0, 16])), 60)
             for i, (c, a, b) in enumerate(peaks * 30)]
    write_bam(tmp_path / "chip.bam", reads, sizes=genome_sizes)
    (tmp_path / "frags.tsv").write_text("".join(
        f"{c}\t{a + 20}\t{b - 20}\tBC\t1\n" for c, a, b in sorted(peaks)))


def test_workflow_makes_and_checks_tracks(tmp_path):
    from conftest import run_snakemake

    _workflow_inputs(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(textwrap.dedent("""\
        datasets:
          chip:
            genome: genome.fa
            peaks: peaks.bed
            signal: chip.bam
            control: chip.bam
          atac:
            genome: genome.fa
            peaks: peaks.bed
            signal: frags.tsv
            assay: atac
          pair:
            genome: genome.fa
            peaks: peaks.bed
            signal: {plus: plus.bw, minus: minus.bw}
        """))
    for strand in ("plus", "minus"):  # a user's own pair of bigWigs: read as they are
        _bigwig(tmp_path / f"{strand}.bw", {"chr1": 3000, "chr2": 3000}, [2.0] * 2000)
    targets = ["results/chip/signal/peaks.check.tsv", "results/atac/signal/peaks.check.tsv",
               "results/chip/signal/control.minus.bw", "results/pair/signal/peaks.check.tsv"]
    run_snakemake(tmp_path, "--cores", "1", *targets, configfile=cfg)
    got = bigwig_counts(tmp_path / "results/chip/signal/peaks.plus.bw")
    got_minus = bigwig_counts(tmp_path / "results/chip/signal/peaks.minus.bw")
    total = sum(sum(v.values()) for d in (got, got_minus) for v in d.values())
    assert total == 90
    # the control is converted like the signal, into its own track (not checked in peaks)
    control = bigwig_counts(tmp_path / "results/chip/signal/control.plus.bw")
    assert control == got
    assert not (tmp_path / "results/chip/signal/control.check.tsv").exists()
    atac = bigwig_counts(tmp_path / "results/atac/signal/peaks.bw")
    assert atac["chr1"] == {520: 1, 680: 1, 1520: 1, 1680: 1}
    assert "with_reads" in (tmp_path / targets[0]).read_text()
    # the pair covers chr1's two peaks, not chr2's: 2 of 3 pass the default 0.5, not 0.9
    assert not list((tmp_path / "results/pair/signal").glob("*.bw"))  # nothing converted
    strict = tmp_path / "strict.yaml"
    strict.write_text(cfg.read_text() + "signal:\n  min_peaks_with_reads: 0.9\n")
    # the target before --forcerun, whose list would swallow it (and run rule all instead)
    bad = run_snakemake(tmp_path, "--cores", "1", "results/pair/signal/peaks.check.tsv",
                        "--forcerun", "check_signal", configfile=strict, check=False)
    out = " ".join((bad.stdout + bad.stderr).split())
    assert bad.returncode != 0 and "only 67% of 3 peaks" in out, out[-2000:]
    assert "plus.bw" in out and "same experiment and assembly" in out
    # the plan of a full run converts once and checks before anything else needs it
    plan = run_snakemake(tmp_path, "-n", configfile=cfg)
    plan_text = plan.stdout + plan.stderr
    assert "rule prepare_regions" in plan_text  # the plan is there, and it lists rules
    assert "make_signal_track" not in plan_text  # reused: already made
    # a stricter reads-in-peaks threshold reruns the check, never the conversion
    stricter = run_snakemake(tmp_path, "-n", "results/chip/signal/peaks.check.tsv",
                             configfile=strict)
    stricter_text = stricter.stdout + stricter.stderr
    assert "rule check_signal" in stricter_text
    assert "make_signal_track" not in stricter_text


@pytest.mark.parametrize("extra, expected", [
    ("signal: {a: chip.bam}", "some tasks and not for others"),
    ("signal: nochr.bam", "'chr' prefix"),
])
def test_config_mistakes_stop_a_dry_run(tmp_path, extra, expected):
    from conftest import run_snakemake

    _workflow_inputs(tmp_path)
    write_bam(tmp_path / "nochr.bam", [("r", "1", 5, "10M", 0, 60)], sizes={"1": 3000})
    peaks = ("{a: peaks.bed, b: peaks.bed}" if extra.startswith("signal: {")
             else "peaks.bed")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets:\n  d:\n    genome: genome.fa\n    peaks: {peaks}\n    {extra}\n")
    proc = run_snakemake(tmp_path, "-n", configfile=cfg, check=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and expected in out, out[-2000:]
    assert "Traceback" not in out
