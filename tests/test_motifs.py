"""Unit tests of peak2motif.motifs on synthetic contributions.

Signal: random sequences with JASPAR GATA1 and CTCF instances sampled from their PPMs, and
hypothetical contributions equal to the PPM's centred log-odds at the planted positions plus
Gaussian noise everywhere, so TF-MoDISco has something real to find; the matched negatives
are random sequences with noise only. Negative control: strong contributions on random,
non-reproducible bases, in positives and negatives alike (TF-MoDISco still reports junk
clusters, which the null must remove).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from memelite.io import read_meme
from peak2motif import motifs as M
from peak2motif.errors import InputError

REPO = Path(__file__).resolve().parents[1]

GATA1, CTCF = "MA0035.4", "MA0139.2"
# The schema defaults: the same filters must keep the planted motifs and drop all the junk.
FILTERS = dict(min_seqlets=20, trim_threshold=0.5, min_length=5, min_information=4.0)


@pytest.fixture(scope="module")
def jaspar() -> M.MotifDatabase:
    return M.load_jaspar("JASPAR2024", "CORE", ["vertebrates"])


@pytest.fixture(scope="module")
def planted_motifs() -> dict:
    """matrix id -> (name, family, PPM (W, 4)) of the planted versions (not always the latest)."""
    from pyjaspar import jaspardb

    db = jaspardb(release="JASPAR2024")
    out = {}
    for mid in (GATA1, CTCF):
        m = db.fetch_motif_by_id(mid)
        counts = np.array([m.counts[b] for b in "ACGT"], float)
        out[mid] = (m.name, "; ".join(m.tf_family), (counts / counts.sum(0)).T)
    return out


def _write_inputs(tmp, onehot, hyp, planted_rows, negatives=None, n_chroms=3):
    """contributions.h5 (positives, then ``negatives`` = (onehot, hyp)), regions.tsv
    (sequence k on chrom c{k%3}) and planted.tsv."""
    from peak2motif import contributions
    from peak2motif.sequences import codes_from_one_hot

    neg_onehot, neg_hyp = negatives if negatives is not None else (onehot[:0], hyp[:0])
    all_onehot = np.concatenate([onehot, neg_onehot])
    all_hyp = np.concatenate([hyp, neg_hyp])
    n, length, _ = all_onehot.shape
    chrom = [f"c{k % n_chroms}" for k in range(n)]
    start = [10_000 + (k // n_chroms) * 1000 for k in range(n)]
    positive = np.arange(n) < len(onehot)
    regions = pd.DataFrame(
        {"chrom": chrom, "start": start, "end": [s + length for s in start],
         "name": [f"r{k}" for k in range(n)],
         "kind": np.where(positive, "peak", "background"), "unit": chrom,
         "split_0": "test", "peaks": positive.astype(float)}
    )
    # The contributions file holds the rows in another order than regions.tsv.
    rows = np.random.default_rng(5).permutation(n)
    contributions.write(
        tmp / "contributions.h5",
        {"codes": codes_from_one_hot(all_onehot[rows]), "region_index": rows,
         "fold": np.zeros(n, np.int16), "labels": positive[rows, None].astype(np.float32),
         "prediction": positive[rows, None].astype(np.float32)},
        {"peaks": {"rows": np.arange(n), "hypothetical": all_hyp[rows],
                   "logit": np.zeros(n), "logit_delta": (all_hyp * all_onehot)[rows].sum((1, 2)),
                   "positive": positive[rows]}},
        {"method": "synthetic", "tasks": ["peaks"], "task_type": "binary"})
    regions.to_csv(tmp / "regions.tsv", sep="\t", index=False)
    planted = pd.DataFrame(
        [(chrom[k], start[k] + a, start[k] + b, s, mid, name, f"r{k}")
         for k, a, b, s, mid, name in planted_rows],
        columns=["chrom", "start", "end", "strand", "motif_id", "motif_name", "peak"],
    )
    planted.to_csv(tmp / "planted.tsv", sep="\t", index=False)


def noise(n=600, length=200, seed=9, noise=0.1):
    """Random sequences with Gaussian noise contributions: matched negatives."""
    rng = np.random.default_rng(seed)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]
    return onehot, rng.normal(0, noise, size=(n, length, 4)).astype(np.float32)


def synthetic_signal(planted, n=600, length=200, ids=(GATA1, CTCF), seed=0, noise=0.1, gain=1.0):
    rng = np.random.default_rng(seed)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]
    hyp = rng.normal(0, noise, size=(n, length, 4)).astype(np.float32)
    rows = []
    for k in range(n):
        mid = ids[k % len(ids)]
        name, _family, ppm = planted[mid]
        strand = "+" if rng.random() < 0.5 else "-"
        if strand == "-":
            ppm = ppm[::-1, ::-1]
        w = len(ppm)
        pos = int(rng.integers(10, length - w - 10))
        site = (rng.random(w)[:, None] > np.cumsum(ppm, 1)[:, :3]).sum(1)
        onehot[k, pos : pos + w] = np.eye(4)[site]
        lo = np.log2((ppm + 0.01) / 0.26)
        hyp[k, pos : pos + w] += gain * (lo - lo.mean(1, keepdims=True))
        rows.append((k, pos, pos + w, strand, mid, name))
    return onehot, hyp, rows


def synthetic_junk(n=1500, length=200, seed=1, noise=0.1, width=12):
    """Strong contributions on a random stretch of each sequence: important, not reproducible."""
    rng = np.random.default_rng(seed)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]
    hyp = rng.normal(0, noise, size=(n, length, 4)).astype(np.float32)
    for k in range(n):
        pos = int(rng.integers(0, length - width))
        scale = np.abs(rng.normal(1, 0.3, size=(width, 1)))
        hyp[k, pos : pos + width] += onehot[k, pos : pos + width] * scale
    return onehot, hyp, []


def _run_stage(tmp, params):
    M.discover_motifs(tmp / "contributions.h5", tmp / "modisco.h5", params, task="peaks",
                      threads=2)
    table = M.match_motifs(
        modisco_h5={"peaks": tmp / "modisco.h5"},
        contributions=tmp / "contributions.h5",
        regions_tsv=tmp / "regions.tsv",
        planted_tsv=tmp / "planted.tsv",
        motifs_tsv=tmp / "motifs.tsv",
        patterns_tsv=tmp / "patterns.tsv",
        motifs_meme=tmp / "motifs.meme",
        logos_dir=tmp / "logos",
        html=tmp / "motifs.html",
        params=params,
        threads=2,
    )
    return table


PARAMS = dict(seed=0, **FILTERS)


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory, planted_motifs):
    tmp = tmp_path_factory.mktemp("signal")
    onehot, hyp, rows = synthetic_signal(planted_motifs)
    _write_inputs(tmp, onehot, hyp, rows, negatives=noise())
    _run_stage(tmp, PARAMS)
    return tmp


@pytest.fixture(scope="module")
def junk_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("junk")
    onehot, hyp, _ = synthetic_junk(n=1500, seed=1)
    neg_onehot, neg_hyp, _ = synthetic_junk(n=1500, seed=2)
    _write_inputs(tmp, onehot, hyp, [], negatives=(neg_onehot, neg_hyp))
    _run_stage(tmp, PARAMS)
    return tmp


# --- small pure functions --------------------------------------------------------------------


def test_information_content_of_uniform_and_certain_columns():
    ppm = np.array([[0.25] * 4, [1, 0, 0, 0], [0.5, 0.5, 0, 0]])
    ic = M.information_content(ppm)
    assert ic[0] == pytest.approx(0, abs=1e-6)
    assert ic[1] == pytest.approx(2, abs=0.05)
    assert ic[2] == pytest.approx(1, abs=0.05)


def test_trim_window_keeps_inner_gaps():
    ic = np.array([0.1, 0.6, 0.2, 0.1, 1.5, 0.4])
    assert M.trim_window(ic, 0.5) == (1, 5)
    assert M.trim_window(ic, 1.6) is None


def test_consensus_marks_weak_positions_lower_case():
    ppm = np.array([[1, 0, 0, 0], [0.25] * 4, [0, 0, 0, 1.0]])
    assert M.consensus(ppm, M.information_content(ppm), 0.5) == "AaT"


def _pattern(name, n_seqlets, ppm):
    seqlets = pd.DataFrame({"example_idx": np.zeros(n_seqlets, int), "start": 0,
                            "end": len(ppm), "is_revcomp": False})
    return M.Pattern(name, "positive", np.asarray(ppm, float), np.zeros((len(ppm), 4)),
                     np.zeros((len(ppm), 4)), seqlets)


def test_few_seqlets_need_more_skew_to_count_as_informative():
    """A flank column of 25 seqlets with counts (2, 3, 3, 17) has 0.59 bits as a PPM and
    would survive trimming; counted with a pseudocount of 1 per base it has 0.45 and is
    trimmed away. With ten times the seqlets the same frequencies stay informative."""
    flank = np.array([2, 3, 3, 17]) / 25
    core = np.array([0.92, 0.04, 0.02, 0.02])
    ppm = np.vstack([flank, core, core, core, core, flank])
    assert M.information_content(ppm)[0] == pytest.approx(0.59, abs=0.01)
    few = M.seqlet_information(ppm, 25, 1.0)
    assert few[0] == pytest.approx(0.45, abs=0.01) and few[1] > 1.0
    assert M.trim_window(few, 0.5) == (1, 5)
    assert M.trim_window(M.seqlet_information(ppm, 250, 1.0), 0.5) == (0, 6)


def test_filter_patterns_says_why_each_pattern_is_dropped():
    flat, site = [0.25] * 4, [0.97, 0.01, 0.01, 0.01]
    patterns = [
        _pattern("ok", 50, [flat] * 3 + [site] * 6 + [flat] * 3),
        _pattern("few", 10, [site] * 6),
        _pattern("flat", 50, [flat] * 10),
        _pattern("short", 50, [flat, site, site, flat]),
        _pattern("weak", 50, [[0.55, 0.15, 0.15, 0.15]] * 8),
    ]
    s = M.filter_patterns(patterns, **{**FILTERS, "min_seqlets": 20})
    assert list(s.columns) == M.PATTERN_COLUMNS
    assert s["kept"].tolist() == [True, False, False, False, False]
    assert (s.loc[0, "trim_start"], s.loc[0, "trim_end"]) == (3, 9)
    assert "seqlets" in s.loc[1, "reason"]
    assert "bits" in s.loc[2, "reason"]
    assert "min_length" in s.loc[3, "reason"]
    assert patterns[0].trim == (3, 9)


def test_benjamini_hochberg_matches_the_textbook_values():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.02, 0.04, 0.04
    np.testing.assert_allclose(M.benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    q = M.benjamini_hochberg(np.array([[0.01, np.nan], [0.02, 0.5]]))
    assert np.isnan(q[0, 1]) and np.all(q[np.isfinite(q)] >= [0.01, 0.02, 0.5])


def test_seqlet_intervals_follow_strand_and_region():
    p = _pattern("p", 2, [[0.25] * 4] * 10)
    p.seqlets = pd.DataFrame({"example_idx": [0, 1], "start": [5, 20], "end": [15, 30],
                              "is_revcomp": [False, True]})
    p.trim = (2, 6)
    regions = pd.DataFrame({"chrom": ["a", "b"], "start": [100, 1000], "end": [200, 1100]})
    iv = M.seqlet_intervals(p, regions)
    assert iv.values.tolist() == [["a", 107, 111], ["b", 1024, 1028]]


def test_overlap_planted_needs_half_of_the_shorter_interval():
    iv = pd.DataFrame({"chrom": ["a", "a", "a", "b"], "start": [0, 10, 100, 0],
                       "end": [10, 20, 110, 10]})
    planted = pd.DataFrame({"chrom": ["a", "a"], "start": [4, 18], "end": [12, 30],
                            "motif_id": ["X", "Y"]})
    hit, which = M.overlap_planted(iv, planted)
    # [0,10) overlaps X by 6 >= 0.5*8; [10,20) overlaps X by 2 and Y by 2 (< 5): no hit.
    assert hit.tolist() == [True, False, False, False]
    assert which.tolist() == ["X", "", "", ""]


# --- databases -------------------------------------------------------------------------------


def test_jaspar_is_offline_latest_versions_with_families(jaspar):
    assert len(jaspar) == 879  # JASPAR2024 CORE vertebrates, latest versions (FACTS.md)
    assert "MA0139.2" in jaspar.ids and jaspar.names[jaspar.ids.index("MA0139.2")] == "CTCF"
    i = jaspar.ids.index("MA0035.5")
    assert "GATA" in jaspar.families[i]
    for ppm in jaspar.ppms[:20]:
        assert ppm.shape[0] == 4
        np.testing.assert_allclose(ppm.sum(axis=0), 1, atol=1e-9)
    with pytest.raises(InputError, match="jaspar_release"):
        M.load_jaspar("JASPAR1999", "CORE", ["vertebrates"])
    with pytest.raises(InputError, match="jaspar_tax_group"):
        M.load_jaspar("JASPAR2024", "CORE", ["martians"])


def test_user_meme_file_round_trips(tmp_path, jaspar):
    from memelite.io import write_meme

    write_meme(str(tmp_path / "db.meme"), {"MA0139.2 CTCF": jaspar.ppms[jaspar.ids.index(CTCF)]})
    db = M.read_meme_database(tmp_path / "db.meme")
    assert db.ids == ["MA0139.2"] and db.names == ["CTCF"]
    assert db.ppms[0].shape == jaspar.ppms[jaspar.ids.index(CTCF)].shape
    with pytest.raises(InputError, match="not found"):
        M.read_meme_database(tmp_path / "missing.meme")
    (tmp_path / "empty.meme").write_text("MEME version 4\n")
    with pytest.raises(InputError, match="no MOTIF"):
        M.read_meme_database(tmp_path / "empty.meme")


def test_tomtom_offset_and_strand_locate_a_piece_of_ctcf(jaspar):
    ctcf = jaspar.ppms[jaspar.ids.index(CTCF)]
    queries = [ctcf[:, 3:12], ctcf[::-1, ::-1][:, 2:10]]
    m = M.tomtom_matches(queries, jaspar, threads=2)
    j = jaspar.ids.index(CTCF)
    assert m["pvalue"].shape == (2, len(jaspar))
    assert (m["pvalue"].argmin(axis=1) == j).all()
    assert m["qvalue"][:, j].max() < 1e-3
    assert m["offset"][:, j].tolist() == [3, 2]
    assert m["strand"][:, j].tolist() == [0, 1]
    per = M.tomtom_matches(queries, jaspar, correction="per_pattern", threads=2)
    np.testing.assert_allclose(per["pvalue"], m["pvalue"])
    with pytest.raises(InputError, match="multiple_testing"):
        M.tomtom_matches(queries, jaspar, correction="bonferonni")


# --- the whole stage on synthetic contributions ----------------------------------------------


def test_planted_motifs_are_recovered_on_their_seqlets(signal_run, planted_motifs):
    table = pd.read_csv(signal_run / "motifs.tsv", sep="\t")
    assert list(table.columns[:11]) == [
        "task", "pattern", "sign", "n_seqlets", "consensus", "length",
        "match_id", "match_name", "match_class", "pvalue", "qvalue",
    ]
    # every reported motif's hits are enriched over the matched negatives
    assert (table["enrichment"] >= 2).all() and (table["enrichment_qvalue"] < 0.05).all()
    for planted_id, (name, family, _ppm) in planted_motifs.items():
        hits = table[
            ((table["match_name"] == name) | (table["match_family"] == family))
            & (table["qvalue"] < 0.05)
            & (table["planted_motif"] == planted_id)
        ]
        assert not hits.empty, f"{planted_id} not recovered:\n{table.to_string()}"
        assert hits["seqlet_fraction_in_planted"].max() >= 0.9
    # a match is only named below max_qvalue
    assert (table.loc[table["match_id"].notna(), "qvalue"] < 0.05).all()


def test_modisco_h5_indexes_rows_of_regions(signal_run):
    with h5py.File(signal_run / "modisco.h5", "r") as fh:
        assert "regions.tsv" in fh.attrs["example_idx"]
        idx = fh["pos_patterns/pattern_0/seqlets/example_idx"][:]
    regions = pd.read_csv(signal_run / "regions.tsv", sep="\t")
    # modisco saw the positives only: seqlets lie in peak regions
    assert (regions.iloc[idx]["kind"] == "peak").all()


def test_meme_logos_and_html_describe_every_reported_motif(signal_run):
    table = pd.read_csv(signal_run / "motifs.tsv", sep="\t")
    meme = read_meme(str(signal_run / "motifs.meme"))
    assert list(meme) == table["pattern"].tolist()
    for (_, row), ppm in zip(table.iterrows(), meme.values(), strict=True):
        assert ppm.shape == (4, row["length"])
        np.testing.assert_allclose(ppm.sum(axis=0), 1, atol=1e-6)
        png = signal_run / "logos" / f"{row['pattern']}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (signal_run / "motifs.html").read_text()
    assert html.count('<img class="logo"') == 2 * len(table)  # forward and reverse CWM
    assert "CTCF" in html and "No motif is reported" not in html


def test_noise_only_contributions_report_no_motif(junk_run):
    summary = pd.read_csv(junk_run / "patterns.tsv", sep="\t")
    # TF-MoDISco does report junk clusters here (21, up to 70 seqlets, measured): the null
    # (hits no more frequent in positives than in the matched negatives) removes every one
    # that the seqlet count and trimming let through.
    assert len(summary) > 0 and summary["n_seqlets"].max() >= 40
    assert not summary["kept"].any()
    passed_filters = summary[summary["reason"].str.contains("enrich", na=False)]
    assert len(passed_filters) > 0, "the null must be what removes the big junk clusters"
    table = pd.read_csv(junk_run / "motifs.tsv", sep="\t")
    assert table.empty and list(table.columns) == M.MOTIF_COLUMNS
    assert read_meme(str(junk_run / "motifs.meme")) == {}
    html = (junk_run / "motifs.html").read_text()
    assert "No motif is reported" in html


def test_without_the_null_the_junk_is_reported(junk_run, tmp_path):
    """Proof that the null check can fail: with min_enrichment 1 and q-value 1 it keeps junk."""
    import shutil

    for f in ("contributions.h5", "regions.tsv", "planted.tsv", "modisco.h5"):
        shutil.copy(junk_run / f, tmp_path / f)
    table = M.match_motifs(
        modisco_h5={"peaks": tmp_path / "modisco.h5"}, contributions=tmp_path / "contributions.h5",
        regions_tsv=tmp_path / "regions.tsv", planted_tsv=None,
        motifs_tsv=tmp_path / "m.tsv", patterns_tsv=tmp_path / "p.tsv",
        motifs_meme=tmp_path / "m.meme", logos_dir=tmp_path / "logos",
        html=tmp_path / "m.html",
        params={**PARAMS, "min_enrichment": 1.0, "enrichment_qvalue": 1.0}, threads=2)
    assert len(table) > 0


def test_all_zero_contributions_give_valid_empty_outputs(tmp_path):
    onehot = np.eye(4, dtype=np.float32)[np.zeros((30, 50), int)]
    _write_inputs(tmp_path, onehot, np.zeros_like(onehot), [])
    table = _run_stage(tmp_path, PARAMS)
    assert table.empty
    assert (tmp_path / "motifs.tsv").read_text().startswith("task\tpattern\tsign")
    assert pd.read_csv(tmp_path / "patterns.tsv", sep="\t").empty
    assert "No motif is reported" in (tmp_path / "motifs.html").read_text()


def test_missing_task_is_named(tmp_path):
    from peak2motif.contributions import read_task

    _write_inputs(tmp_path, *noise(n=5, length=20), [])
    with pytest.raises(InputError, match="no contributions for task 'x'.*has peaks"):
        read_task(tmp_path / "contributions.h5", "x")


def test_discover_motifs_lets_modisco_cache_its_kernels(tmp_path):
    """TF-MoDISco-lite caches its numba kernels only when it can fork its compiling children,
    which it cannot once numba's OpenMP pool runs; discover_motifs started the pool first,
    so every run compiled in-process (13-15 s of the demo's 25 s job). In a fresh process,
    the children must be forked (modisco's own record of it: ``_owner``)."""
    import subprocess
    import sys

    onehot, hyp = noise(n=20, length=60)
    _write_inputs(tmp_path, onehot, hyp, [])
    script = f"""
import os, sys
sys.path.insert(0, {str(REPO / "scripts")!r})
from peak2motif import motifs
from modiscolite import precompile
motifs.run_modisco = lambda onehot, hyp, **k: (None, None, list(range(len(onehot))))
motifs.write_modisco = lambda *a, **k: None
motifs.discover_motifs({str(tmp_path / "contributions.h5")!r}, {str(tmp_path / "m.h5")!r},
                       {{}}, "peaks", threads=2)
print("forked" if precompile._owner == os.getpid() else "not forked")
"""
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "forked", proc.stdout + proc.stderr[-2000:]
