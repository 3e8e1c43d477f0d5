"""The demo simulator (peak2motif.simulate)."""

import numpy as np
import pandas as pd
import pytest
from peak2motif.errors import InputError
from peak2motif.sequences import encode
from peak2motif.simulate import Motif, markov_chain, resolve_motifs, simulate_demo

# A strong toy motif (GATAAG-like) and a longer one, so tests need no JASPAR look-up.
TOY = [
    Motif("TOY1", "toy1", np.full((6, 4), 0.01) + np.eye(4)[[2, 0, 3, 0, 0, 2]] * 0.96),
    Motif("TOY2", "toy2",
          np.full((10, 4), 0.01) + np.eye(4)[[1, 1, 2, 1, 3, 3, 0, 2, 1, 2]] * 0.96),
]


def _read_fasta(path):
    seqs, name = {}, None
    for line in open(path):
        if line.startswith(">"):
            name = line[1:].strip()
            seqs[name] = []
        else:
            seqs[name].append(line.strip())
    return {k: "".join(v) for k, v in seqs.items()}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    simulate_demo(d / "g.fa", d / "p.narrowPeak", d / "t.tsv", seed=5, n_chromosomes=3,
                  chromosome_length=200_000, n_peaks=60, motif_list=TOY, plant_within=30,
                  planted_fraction=0.8)
    return d


def test_sample_site_respects_the_score_threshold():
    from peak2motif.simulate import sample_site

    pfm = np.full((8, 4), 0.1)
    pfm[np.arange(8), [0, 1, 2, 3, 0, 1, 2, 3]] = 0.7
    logodds = np.log2((pfm + 1e-3) / (1 + 4e-3) / 0.25)
    worst, best = logodds.min(1).sum(), logodds.max(1).sum()
    rng = np.random.default_rng(0)

    def scores(threshold):
        sites = [sample_site(pfm, rng, threshold) for _ in range(300)]
        return np.array([logodds[np.arange(8), site].sum() for site in sites])

    free, strong = scores(0.0), scores(0.8)
    assert free.min() < worst + 0.8 * (best - worst)  # plain samples include weak sites
    assert strong.min() >= worst + 0.8 * (best - worst) - 1e-9
    assert len({tuple(sample_site(pfm, rng, 0.8)) for _ in range(50)}) > 1  # still sampled
    assert (sample_site(pfm, rng, 1.0) == [0, 1, 2, 3, 0, 1, 2, 3]).all()  # consensus only


def test_markov_chain_gc_and_cpg_depletion():
    from peak2motif.simulate import _transition_tables

    cdf = _transition_tables(np.array([0.5]), cpg_depletion=0.2)
    x = markov_chain(np.zeros(200_000, dtype=np.intp), cdf, np.random.default_rng(0))
    freq = np.bincount(x, minlength=4) / len(x)
    cg = np.mean((x[:-1] == 1) & (x[1:] == 2))
    assert cg / (freq[1] * freq[2]) < 0.35  # CpG observed/expected well below 1
    gc_ = np.mean((x[:-1] == 1) & (x[1:] == 1)) / (freq[1] ** 2)
    assert 0.8 < gc_ < 1.2  # other dinucleotides are not depleted


def test_markov_chain_follows_transitions_exactly():
    # a deterministic cycle A->C->G->T->A checks the prefix-scan composition
    probs = np.zeros((1, 4, 4))
    for s in range(4):
        probs[0, s, (s + 1) % 4] = 1
    cdf = np.cumsum(probs, -1)[..., :3]
    x = markov_chain(np.zeros(1001, dtype=np.intp), cdf, np.random.default_rng(1))
    assert np.all(np.diff(x.astype(int)) % 4 == 1)


def test_simulation_is_deterministic(sim, tmp_path):
    simulate_demo(tmp_path / "g.fa", tmp_path / "p.narrowPeak", tmp_path / "t.tsv", seed=5,
                  n_chromosomes=3, chromosome_length=200_000, n_peaks=60, motif_list=TOY,
                  plant_within=30, planted_fraction=0.8)
    for f in ("g.fa", "p.narrowPeak", "t.tsv", "g.fa.fai"):
        assert (tmp_path / f).read_bytes() == (sim / f).read_bytes()


def test_genome_looks_like_a_genome(sim):
    seqs = _read_fasta(sim / "g.fa")
    assert list(seqs) == ["chr1", "chr2", "chr3"]
    s = "".join(seqs.values())
    assert any(ch.islower() for ch in s) and "N" in s
    up = s.upper().replace("N", "")
    gc = (up.count("G") + up.count("C")) / len(up)
    assert 0.33 < gc < 0.48
    assert abs(up.count("C") - up.count("G")) / len(up) < 0.01  # strand symmetric
    assert (sim / "g.fa.fai").read_text().splitlines()[0].split("\t")[:2] == ["chr1", "200000"]


def test_planted_sites_are_in_the_genome_near_summits(sim):
    seqs = {k: v.upper() for k, v in _read_fasta(sim / "g.fa").items()}
    peaks = pd.read_csv(sim / "p.narrowPeak", sep="\t", header=None)
    truth = pd.read_csv(sim / "t.tsv", sep="\t")
    assert list(truth.columns) == ["chrom", "start", "end", "strand", "motif_id", "motif_name",
                                   "peak"]
    assert len(truth) > 30 and set(truth["motif_id"]) == {"TOY1", "TOY2"}
    summit = dict(zip(peaks[3], peaks[1] + peaks[9], strict=True))
    consensus = {m.matrix_id: "".join("ACGT"[i] for i in m.pfm.argmax(1)) for m in TOY}
    comp = str.maketrans("ACGT", "TGCA")
    matches = 0
    for r in truth.itertuples():
        centre = (r.start + r.end) / 2
        assert abs(centre - summit[r.peak]) <= 30 + 1
        site = seqs[r.chrom][r.start:r.end]
        if r.strand == "-":
            site = site.translate(comp)[::-1]
        matches += site == consensus[r.motif_id]
    assert matches > 0.5 * len(truth)  # sampled from a 96%-peaked PFM


def test_signal_is_higher_where_motifs_were_planted(sim):
    peaks = pd.read_csv(sim / "p.narrowPeak", sep="\t", header=None)
    planted = set(pd.read_csv(sim / "t.tsv", sep="\t")["peak"])
    has = peaks[3].isin(planted)
    assert 0 < (~has).sum() < has.sum()
    assert peaks.loc[has, 6].mean() > 1.8 * peaks.loc[~has, 6].mean()
    assert (peaks[9] >= 0).all() and (peaks[1] + peaks[9] < peaks[2]).all()


def test_no_motifs_is_a_negative_control(tmp_path):
    simulate_demo(tmp_path / "g.fa", tmp_path / "p.np", tmp_path / "t.tsv", seed=1,
                  n_chromosomes=3, chromosome_length=100_000, n_peaks=20, motif_list=[])
    assert len(pd.read_csv(tmp_path / "t.tsv", sep="\t")) == 0
    assert len(pd.read_csv(tmp_path / "p.np", sep="\t", header=None)) == 20


def test_too_many_peaks_is_a_config_error(tmp_path):
    with pytest.raises(InputError, match="simulate: n_peaks"):
        simulate_demo(tmp_path / "g.fa", tmp_path / "p", tmp_path / "t", n_chromosomes=3,
                      chromosome_length=20_000, n_peaks=500, motif_list=[])
    assert not (tmp_path / "g.fa").exists()


def test_resolve_motifs_by_id_and_by_name():
    by_id, by_name = resolve_motifs(["MA0139.2", "GATA1"])
    assert by_id.name == "CTCF" and by_id.pfm.shape[1] == 4
    np.testing.assert_allclose(by_id.pfm.sum(1), 1)
    assert by_name.matrix_id.startswith("MA0035")  # the human matrix, not the plant one
    assert encode("".join("ACGT"[i] for i in by_name.pfm.argmax(1))).size == len(by_name.pfm)


def test_unknown_motif_names_the_key_and_close_names():
    with pytest.raises(InputError, match=r"simulate: motifs.*close names: GATA\d"):
        resolve_motifs(["GATA"])


def test_scrub_chance_sites_keeps_planted_sites_and_composition():
    from peak2motif.simulate import _relative_scores, scrub_chance_sites

    pfm = np.full((8, 4), 0.02)
    pfm[np.arange(8), [0, 2, 0, 3, 0, 0, 2, 1]] = 0.94
    logodds = np.log2((pfm + 1e-3) / (1 + 4e-3) / 0.25)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 400).astype(np.uint8)
    site = np.array([0, 2, 0, 3, 0, 0, 2, 1], dtype=np.uint8)
    x[50:58] = site  # planted
    x[200:208] = site  # chance match
    x[300:308] = (3 - site)[::-1]  # chance match, other strand
    before = x.copy()
    n = scrub_chance_sites(x, [(50, 58)], [pfm], 0.8, np.random.default_rng(1))
    assert n >= 2
    scores = _relative_scores(x, logodds)
    assert scores[50] == 1.0  # the planted site is untouched
    assert np.delete(scores, range(43, 58)).max() < 0.8  # no other strong site is left
    assert (np.bincount(x, minlength=4) == np.bincount(before, minlength=4)).all()


def test_demo_variants_break_planted_sites_or_lie_away_from_them(tmp_path):
    import pyfaidx

    d = tmp_path
    simulate_demo(d / "g.fa", d / "p.np", d / "t.tsv", d / "v.vcf", seed=5, n_chromosomes=3,
                  chromosome_length=200_000, n_peaks=60, motif_list=TOY, n_variants=20)
    rows = [line.split("\t") for line in (d / "v.vcf").read_text().splitlines()
            if not line.startswith("#")]
    assert 15 <= len(rows) <= 20
    planted = pd.read_csv(d / "t.tsv", sep="\t")
    fa = pyfaidx.Fasta(str(d / "g.fa"), as_raw=True)
    for chrom, pos, vid, ref, alt, *_ in rows:
        pos = int(pos)
        assert fa[chrom][pos - 1].upper() == ref != alt  # REF is the genome's base
        inside = ((planted.chrom == chrom) & (planted.start < pos) & (pos <= planted.end)).any()
        assert inside == vid.startswith("site_"), (vid, chrom, pos)
    assert sum(r[2].startswith("site_") for r in rows) >= 8
