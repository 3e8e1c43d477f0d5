"""Bad input through the real workflow CLI: a clear error before long work, no trusted output.

Each case runs ``snakemake`` on a small genome and peak file made in the test and asserts that
the run fails, that the message names the file and line (or the config key), what was expected
and the fix, and that no output a rerun would trust is left behind.
"""

import textwrap

import pytest
from conftest import run_snakemake
from genome_fixture import spread_peaks, write_genome

LENGTHS = {"chr1": 30_000, "chr2": 30_000, "chr3": 30_000, "chr4": 30_000}
TARGET = "results/bad/sequences/regions.tsv"


def _setup(tmp_path, peak_lines=None, config=None):
    write_genome(tmp_path / "genome.fa", LENGTHS, seed=0)
    rows = spread_peaks(LENGTHS, per_chrom=5)
    lines = ["\t".join(map(str, r)) + "\n" for r in rows]
    if peak_lines is not None:
        lines.insert(10, peak_lines)
    text = "".join(lines)
    (tmp_path / "peaks.narrowPeak").write_text(text)
    cfg = config or textwrap.dedent("""\
        datasets:
          bad:
            genome: genome.fa
            peaks: peaks.narrowPeak
        """)
    (tmp_path / "c.yaml").write_text(cfg)
    return tmp_path / "c.yaml"


def _fail(tmp_path, cfg):
    proc = run_snakemake(tmp_path, "--cores", "1", TARGET, configfile=cfg, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert not (tmp_path / TARGET).exists()
    leftovers = list((tmp_path / "results").rglob("*")) if (tmp_path / "results").exists() else []
    assert not [p for p in leftovers if p.is_file()], leftovers
    # a user's mistake reads as one paragraph, with no Python traceback
    assert "Traceback" not in out, out[-3000:]
    return " ".join(out.split())  # undo line wrapping


# line 11 is where the bad line lands (10 good lines come first)
@pytest.mark.parametrize(
    "line, expected",
    [
        ("chr1\t100\n", ["peaks.narrowPeak, line 11", "expected at least 3 columns",
                         "Fix: BED columns are tab-separated"]),
        ("chr1\t900\t100\n", ["peaks.narrowPeak, line 11", "start 900 is greater than end 100",
                              "Fix: swap"]),
        ("chr1\t-10\t100\n", ["peaks.narrowPeak, line 11", "negative coordinate",
                              "Fix: BED coordinates are 0-based"]),
        ("2\t100\t300\n", ["peaks.narrowPeak, line 11", "chromosome '2' is not in the genome",
                           "with a 'chr' prefix", "sed"]),
    ],
    ids=["malformed", "start_after_end", "negative", "chr_prefix"],
)
def test_bad_bed_lines(tmp_path, line, expected):
    msg = _fail(tmp_path, _setup(tmp_path, peak_lines=line))
    for text in expected:
        assert text in msg, msg[-3000:]
    # ... and the rule's log, where a cluster user looks, says the same
    log = " ".join((tmp_path / "logs" / "bad" / "prepare_regions.log").read_text().split())
    assert expected[1] in log and "Traceback" not in log


def test_empty_after_filtering(tmp_path):
    cfg = _setup(tmp_path, config=textwrap.dedent("""\
        datasets:
          bad:
            genome: genome.fa
            peaks: peaks.narrowPeak
            exclude_chromosomes: [chr1, chr2, chr3, chr4]
        """))
    msg = _fail(tmp_path, cfg)
    assert "peaks.narrowPeak" in msg and "no peaks left" in msg
    assert "Fix: check the file has BED lines" in msg


def test_missing_genome_fails_at_start(tmp_path):
    cfg = _setup(tmp_path)
    (tmp_path / "genome.fa").unlink()
    msg = _fail(tmp_path, cfg)
    assert "datasets: bad: genome" in msg and "genome.fa" in msg and "does not exist" in msg
    assert "Give a path relative to the working directory" in msg
    assert not (tmp_path / "logs").exists()  # nothing started


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("data:\n  sequence_lenght: 100\n", ["data: sequence_lenght", "did you mean",
                                             "sequence_length"]),
        ("data:\n  sequence_length: long\n", ["data: sequence_length", "integer"]),
    ],
    ids=["unknown_key", "wrong_type"],
)
def test_bad_config_values(tmp_path, extra, expected):
    cfg = _setup(tmp_path)
    cfg.write_text(cfg.read_text() + extra)
    msg = _fail(tmp_path, cfg)
    for text in expected:
        assert text in msg, msg[-3000:]
    assert not (tmp_path / "logs").exists()


def test_unsafe_dataset_name(tmp_path):
    cfg = _setup(tmp_path, config=textwrap.dedent("""\
        datasets:
          ../evil:
            genome: genome.fa
            peaks: peaks.narrowPeak
        """))
    proc = run_snakemake(tmp_path, "--cores", "1", configfile=cfg, check=False)
    msg = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "../evil" in msg and "letters, digits" in msg
    assert not (tmp_path / "results").exists() and not (tmp_path / "evil").exists()


def test_three_config_mistakes_are_shown_at_once_by_a_dry_run(tmp_path):
    """Issue 21: an unknown key, a wrong type and a bad enum value, in three sections, all in
    the one message of `snakemake -n`, each with its key and fix."""
    cfg = _setup(tmp_path)
    cfg.write_text(cfg.read_text() + textwrap.dedent("""\
        data:
          sequence_lenght: 100
        training:
          epochs: many
        motifs:
          multiple_testing: per_motif
        """))
    proc = run_snakemake(tmp_path, "-n", configfile=cfg, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in out, out[-3000:]
    assert "3 errors in the config:" in out, out[-3000:]
    lines = [line for line in out.splitlines() if "config key '" in line]
    assert len(lines) == 3 and all("Fix:" in line for line in lines), out[-3000:]
    for key, words in (("data: sequence_lenght", "did you mean 'sequence_length'"),
                       ("training: epochs", "integer"),
                       ("motifs: multiple_testing", "per_pattern")):
        assert any(f"config key '{key}'" in line and words in line for line in lines), key
    assert not (tmp_path / "logs").exists()


def test_vcf_of_another_build_stops_the_run_before_training(tmp_path):
    """Issue 21: a REF that is not the genome's base stops the workflow in check_variants,
    which train_model waits for, naming the VCF, its line, the REF and the genome's base."""
    import pyfaidx

    cfg = _setup(tmp_path)
    genome = pyfaidx.Fasta(str(tmp_path / "genome.fa"))
    records = []
    for pos in (1_000, 2_000, 3_000):
        base = str(genome["chr2"][pos - 1]).upper()
        records.append(("chr2", pos, base, "ACGT"[("ACGT".index(base) + 1) % 4]))
    chrom, pos, base, alt = records[1]
    records[1] = (chrom, pos, alt, base)  # REF and ALT swapped: REF is not the genome's base
    (tmp_path / "calls.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        + "".join(f"{c}\t{p}\t.\t{r}\t{a}\t.\tPASS\t.\n" for c, p, r, a in records))
    cfg.write_text(cfg.read_text() + "    variants: calls.vcf\n")
    proc = run_snakemake(tmp_path, "--cores", "1", configfile=cfg, check=False)
    out = proc.stdout + proc.stderr
    msg = " ".join(out.split())
    assert proc.returncode != 0, out[-3000:]
    assert "Error in rule check_variants" in out, out[-3000:]
    for text in ("calls.vcf, line 4", f"REF {alt} does not match the genome",
                 f"which has {base} at chr2:{pos}", "Fix: the VCF and the genome must be the "
                 "same assembly"):
        assert text in msg, msg[-3000:]
    assert "Traceback" not in out, out[-3000:]
    # nothing was trained, and check_variants ran first (its priority), before the data stage
    assert not (tmp_path / "logs" / "bad" / "train_model").exists()
    assert not (tmp_path / "logs" / "bad" / "prepare_regions.log").exists()
    # and whatever the order of jobs, a model cannot be trained before the VCF is checked
    plan = run_snakemake(tmp_path, "-n", "results/bad/folds/0/model/model.keras",
                         configfile=cfg).stdout
    assert "rule check_variants:" in plan and "variants/vcf_check.tsv" in plan, plan[-3000:]
