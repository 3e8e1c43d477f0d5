"""Genome access (peak2motif.genome): windows read as codes, checked against pyfaidx."""

import gzip

import numpy as np
import pytest
from peak2motif import genome as genome_mod
from peak2motif.errors import InputError
from peak2motif.genome import Genome, chromosome_lengths
from peak2motif.sequences import encode

# bases with soft-masking, N and the other IUPAC codes
ALPHABET = np.array(list("ACGTACGTacgtacgtNnRYSWKMBDHVryswkmbdhv"))

# name -> (length, bases per line): multiples of the line width and not, a one-base line,
# an unwrapped chromosome (one line), an empty record between others
LAYOUT = {"chr1": (1000, 60), "chr2": (733, 60), "chrM": (97, 7), "chrU": (500, 500),
          "chrE": (0, 60), "chr3": (360, 60), "chr4": (241, 1), "chrX": (1200, 80)}


def write_fasta(path, layout=LAYOUT, newline="\n", final_newline=True, seed=0):
    """Random FASTA with the given layout; return {name: sequence}."""
    rng = np.random.default_rng(seed)
    seqs = {}
    lines = []
    for name, (length, width) in layout.items():
        seq = "".join(ALPHABET[rng.integers(0, len(ALPHABET), length)])
        seqs[name] = seq
        lines.append(f">{name} some description")
        lines += [seq[i:i + width] for i in range(0, length, width)]
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes(text.encode())
    return seqs


def random_windows(seqs, n, width, rng):
    """``n`` windows of ``width`` on random chromosomes long enough, some touching the ends."""
    names = [c for c, s in seqs.items() if len(s) >= width]
    chroms = rng.choice(names, n)
    starts = np.array([rng.integers(0, len(seqs[c]) - width + 1) for c in chroms])
    for k, c in enumerate(names):  # first and last window of every chromosome
        chroms[2 * k], starts[2 * k] = c, 0
        chroms[2 * k + 1], starts[2 * k + 1] = c, len(seqs[c]) - width
    return chroms, starts, starts + width


def expected(seqs, chroms, starts, ends):
    return np.array([encode(seqs[c][s:e]) for c, s, e in zip(chroms, starts, ends, strict=True)])


@pytest.fixture(params=["default", "rows", "segments", "tiny batches", "kernel refuses"])
def path_choice(request, monkeypatch):
    """Force each of the read paths, and tiny groups and batches, on the same inputs."""
    if request.param == "rows":
        monkeypatch.setattr(genome_mod, "DENSE_SPAN_FACTOR", 0)
    elif request.param == "segments":
        monkeypatch.setattr(genome_mod, "DENSE_SPAN_FACTOR", 10**9)
        monkeypatch.setattr(genome_mod, "MIN_RUN", 1)
    elif request.param == "tiny batches":
        monkeypatch.setattr(genome_mod, "SPAN_BYTES", 300)
        monkeypatch.setattr(genome_mod, "ROW_BYTES", 100)
        monkeypatch.setattr(genome_mod, "_BLOCK", 64)
    elif request.param == "kernel refuses":  # an advice value no kernel knows: EINVAL
        monkeypatch.setattr(genome_mod, "_POPULATE", 12345)
    return request.param


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("width", [1, 5, 60, 61, 97, 240])
def test_windows_match_pyfaidx(tmp_path, newline, width, path_choice):
    import pyfaidx

    fa_path = tmp_path / "g.fa"
    seqs = write_fasta(fa_path, newline=newline)
    rng = np.random.default_rng(width)
    chroms, starts, ends = random_windows(seqs, 300, width, rng)
    order = rng.permutation(len(chroms))  # unsorted input comes back in input order
    with Genome(fa_path) as g:
        got = g.read_codes(chroms[order], starts[order], ends[order])
        got_sorted = g.read_codes(*(a[np.lexsort((starts, chroms))]
                                    for a in (chroms, starts, ends)))
    want = expected(seqs, chroms, starts, ends)
    np.testing.assert_array_equal(got, want[order])
    np.testing.assert_array_equal(got_sorted, want[np.lexsort((starts, chroms))])
    fa = pyfaidx.Fasta(str(fa_path), as_raw=True, sequence_always_upper=False)
    for c, s, e, codes in zip(chroms[:40], starts[:40], ends[:40], want[:40], strict=True):
        np.testing.assert_array_equal(encode(fa.faidx.fetch(c, int(s) + 1, int(e))), codes)


def test_dense_windows_on_a_larger_genome(tmp_path, path_choice):
    layout = {f"c{i}": (20_000 + 37 * i, 60) for i in range(3)}
    seqs = write_fasta(tmp_path / "g.fa", layout, seed=3)
    rng = np.random.default_rng(1)
    chroms, starts, ends = random_windows(seqs, 3000, 150, rng)
    with Genome(tmp_path / "g.fa") as g:
        got = g.read_codes(chroms, starts, ends)
    np.testing.assert_array_equal(got, expected(seqs, chroms, starts, ends))


def test_last_window_of_a_file_without_final_newline(tmp_path):
    layout = {"a": (130, 60), "b": (125, 60)}
    seqs = write_fasta(tmp_path / "g.fa", layout, final_newline=False)
    with Genome(tmp_path / "g.fa") as g:
        got = g.read_codes(np.array(["b", "b", "a"]), np.array([65, 0, 70]),
                           np.array([125, 60, 130]))
    np.testing.assert_array_equal(got, expected(seqs, ["b", "b", "a"], [65, 0, 70],
                                                [125, 60, 130]))


def test_existing_index_is_read_without_pyfaidx_and_agrees(tmp_path):
    seqs = write_fasta(tmp_path / "g.fa")
    assert not (tmp_path / "g.fa.fai").exists()
    built = chromosome_lengths(tmp_path / "g.fa")  # pyfaidx builds the .fai
    assert (tmp_path / "g.fa.fai").exists()
    assert built == {c: len(s) for c, s in seqs.items()}
    assert chromosome_lengths(tmp_path / "g.fa") == built  # read back by genome.py
    with Genome(tmp_path / "g.fa") as g:
        assert g.lengths == built and not g.compressed


def test_bgzip_genome_reads_like_the_plain_one(tmp_path):
    from Bio import bgzf

    seqs = write_fasta(tmp_path / "g.fa")
    packed = tmp_path / "g.fa.gz"
    with bgzf.BgzfWriter(str(packed), "wb") as out:
        out.write((tmp_path / "g.fa").read_bytes())
    chroms, starts, ends = random_windows(seqs, 50, 70, np.random.default_rng(0))
    with Genome(packed) as g:
        assert g.compressed
        got = g.read_codes(chroms, starts, ends)
    np.testing.assert_array_equal(got, expected(seqs, chroms, starts, ends))


def test_no_windows(tmp_path):
    write_fasta(tmp_path / "g.fa")
    with Genome(tmp_path / "g.fa") as g:
        got = g.read_codes(np.array([], dtype=str), np.array([], dtype=np.int64),
                           np.array([], dtype=np.int64))
    assert got.shape == (0, 0) and got.dtype == np.uint8


def test_zero_length_windows(tmp_path):
    write_fasta(tmp_path / "g.fa")
    with Genome(tmp_path / "g.fa") as g:
        got = g.read_codes(np.array(["chr1", "chrE"]), np.array([5, 0]), np.array([5, 0]))
    assert got.shape == (2, 0)


@pytest.mark.parametrize(("chrom", "start", "end", "message"), [
    ("chr9", 0, 10, "chromosome 'chr9' is not in the genome FASTA"),
    ("chr2", 730, 740, "window chr2:730-740 is outside chromosome 'chr2' .length 733"),
    ("chr2", -1, 9, "window chr2:-1-9 is outside"),
])
def test_bad_windows_are_input_errors_naming_the_fasta(tmp_path, chrom, start, end, message):
    write_fasta(tmp_path / "g.fa")
    with Genome(tmp_path / "g.fa") as g, pytest.raises(InputError, match=message) as err:
        g.read_codes(np.array(["chr1", chrom]), np.array([0, start]), np.array([10, end]))
    assert str(tmp_path / "g.fa") in str(err.value) and "Fix:" in str(err.value)


def test_unequal_window_lengths_are_refused(tmp_path):
    write_fasta(tmp_path / "g.fa")
    with Genome(tmp_path / "g.fa") as g, pytest.raises(ValueError, match="same length"):
        g.read_codes(np.array(["chr1", "chr1"]), np.array([0, 0]), np.array([10, 11]))


def test_missing_and_plain_gzip_genomes_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="genome FASTA not found"):
        Genome(tmp_path / "missing.fa")
    (tmp_path / "missing.fa.fai").write_text("a\t4\t3\t4\t5\n")  # a stale index alone
    with pytest.raises(InputError, match="genome FASTA not found"):
        Genome(tmp_path / "missing.fa")
    with gzip.open(tmp_path / "g.fa.gz", "wt") as fh:
        fh.write(">a\nACGT\n")
    with pytest.raises(InputError, match="bgzip"):
        Genome(tmp_path / "g.fa.gz")


def test_malformed_index_is_an_input_error(tmp_path):
    write_fasta(tmp_path / "g.fa")
    (tmp_path / "g.fa.fai").write_text("chr1\t1000\t30\t60\t61\nchr2\tabc\n")
    with pytest.raises(InputError, match=r"g\.fa\.fai, line 2: malformed FASTA index") as err:
        Genome(tmp_path / "g.fa")
    assert "delete the .fai" in str(err.value)
