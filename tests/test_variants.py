"""The variant stage on a planted toy: SNVs that break a planted GATA site against random ones.

The toy genome has two chromosomes with 8 peak windows each (100 bp, the GATA motif
AGATAAGG planted in the middle); fold 0 tests chr1 and fold 1 chr2, and each fold has its own
tiny CNN (:func:`motif_model`: trained for 5 epochs on random sequences that carry the
motif or not). The motif stage's files are written by hand: one reported pattern, the motif.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from attribution_toys import MOTIF, toy_data
from peak2motif import variants
from peak2motif.errors import InputError
from peak2motif.sequences import encode, one_hot

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

L = 400  # windows; the motif covers 2% of each, so 2% of random substitutions hit it
TRAIN_L = 100
CENTRES = [1000 + 1300 * k for k in range(8)]
MOTIF_AT = 196  # offset of the planted motif in each window
HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=chr1>\n##contig=<ID=chr2>\n"
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
BREAK = {1: "C", 2: "C", 3: "G", 4: "C"}  # motif index -> alt that destroys it


def motif_model(seed: int):
    """Conv (8 filters of 8 bp) -> ReLU -> global max pooling -> logit -> sigmoid, trained 5
    epochs on 2,000 random 100-bp sequences, half with the motif (validation accuracy 0.99
    in a trial), then copied into a model of 400-bp input (pooling makes it length-free)."""
    import keras

    def build(length):
        return keras.Sequential([
            keras.Input((length, 4)), keras.layers.Conv1D(8, 8),
            keras.layers.Activation("relu"), keras.layers.GlobalMaxPooling1D(),
            keras.layers.Dense(1, name="logits"),
            keras.layers.Activation("sigmoid", name="output")])

    keras.utils.set_random_seed(seed)
    small = build(TRAIN_L)
    codes, labels, _ = toy_data(2000, TRAIN_L, seed=7)
    small.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    small.fit(one_hot(codes), labels, epochs=5, batch_size=64, verbose=0)
    model = build(L)
    model.set_weights(small.get_weights())
    return model


def write_fasta(path: Path, seqs: dict[str, str]) -> Path:
    with open(path, "w") as fh:
        for name, s in seqs.items():
            fh.write(f">{name}\n" + "\n".join(s[i:i + 60] for i in range(0, len(s), 60)) + "\n")
    return path


def write_vcf(path: Path, rows: list[tuple], header: str = HEADER) -> Path:
    text = header + "".join("\t".join(map(str, r)) + "\t.\t.\t.\n" for r in rows)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Genome, regions.tsv, two fold models, motif files and a VCF with known SNVs."""
    import keras

    d = tmp_path_factory.mktemp("variants")
    rng = np.random.default_rng(5)
    genome = {c: np.array(list("ACGT"))[rng.integers(0, 4, 12_000)] for c in ("chr1", "chr2")}
    rows = []
    for c in genome:
        for k, centre in enumerate(CENTRES):
            start = centre - L // 2
            genome[c][start + MOTIF_AT:start + MOTIF_AT + len(MOTIF)] = list(MOTIF)
            rows.append((c, start, start + L, f"{c}_p{k}", "peak", c, 1.0))
        rows.append((c, 11_000, 11_000 + L, f"{c}_neg", "background", c, 0.0))
    seqs = {c: "".join(s) for c, s in genome.items()}
    fasta = write_fasta(d / "genome.fa", seqs)
    regions = pd.DataFrame(rows, columns=["chrom", "start", "end", "name", "kind", "unit",
                                          "peaks"])
    regions["split_0"] = np.where(regions["chrom"] == "chr1", "test", "train")
    regions["split_1"] = np.where(regions["chrom"] == "chr2", "test", "train")
    regions = regions[["chrom", "start", "end", "name", "kind", "unit", "split_0", "split_1",
                       "peaks"]]
    regions.to_csv(d / "regions.tsv", sep="\t", index=False)
    models = []
    for fold in (0, 1):
        path = d / f"fold{fold}.keras"
        motif_model(fold).save(path)
        models.append(str(path))
        keras.backend.clear_session()

    # the motif stage's files: one reported pattern (the planted motif, 2 flanking bases
    # trimmed away) with a hit threshold of 0.5
    ppm = np.full((len(MOTIF) + 4, 4), 0.25)
    ppm[2:-2] = one_hot(encode(MOTIF))
    with h5py.File(d / "modisco.h5", "w") as h5:
        g = h5.create_group("pos_patterns/pattern_0")
        for name in ("sequence", "contrib_scores", "hypothetical_contribs"):
            g.create_dataset(name, data=ppm)
        for name, value in (("example_idx", 0), ("start", 0), ("end", 12),
                            ("is_revcomp", False)):
            g.create_dataset(f"seqlets/{name}", data=np.array([value]))
    pattern = "peaks.pos_patterns.pattern_0"
    pd.DataFrame({"task": ["peaks"], "pattern": [pattern], "sign": ["positive"],
                  "trim_start": [2], "trim_end": [2 + len(MOTIF)], "hit_contribution": [0.5],
                  "kept": [True]}).to_csv(d / "patterns.tsv", sep="\t", index=False)
    pd.DataFrame({"task": ["peaks"], "pattern": [pattern], "match_name": ["GATA1"]}).to_csv(
        d / "motifs.tsv", sep="\t", index=False)

    # the VCF: 8 motif-breaking SNVs (two of them one multi-allelic record), 16 random SNVs
    # at least 10 bp from the motif, one 20 bp outside a window, one far away, and records
    # that must be skipped
    vcf, breaking, random_snvs = [], set(), set()
    for c in seqs:
        for k, idx in zip((0, 2, 4), (1, 2, 3), strict=True):
            pos = CENTRES[k] - L // 2 + MOTIF_AT + idx + 1
            vcf.append((c, pos, f"break_{c}_{k}", seqs[c][pos - 1], BREAK[idx]))
            breaking.add((c, pos, BREAK[idx]))
        pos = CENTRES[6] - L // 2 + MOTIF_AT + 4 + 1
        vcf.append((c, pos, f"multi_{c}", seqs[c][pos - 1], "C,G"))
        breaking |= {(c, pos, "C"), (c, pos, "G")}
        far = [o for o in range(L) if o < MOTIF_AT - 10 or o > MOTIF_AT + len(MOTIF) + 10]
        for k in range(8):
            pos = CENTRES[k] - L // 2 + int(rng.choice(far)) + 1
            alt = str(rng.choice([b for b in "ACGT" if b != seqs[c][pos - 1]]))
            vcf.append((c, pos, f"rand_{c}_{k}", seqs[c][pos - 1], alt))
            random_snvs.add((c, pos, alt))
    near = CENTRES[1] + L // 2 + 20  # 20 bp past the window's last base, 1-based
    vcf.append(("chr1", near, "near", seqs["chr1"][near - 1], "A" if seqs["chr1"][
        near - 1] != "A" else "C"))
    far = CENTRES[3] + 650  # 450 bp from the nearest window
    vcf.append(("chr1", far, "far", seqs["chr1"][far - 1], "A" if seqs["chr1"][far - 1] != "A"
                else "C"))
    p = CENTRES[3] - 10
    vcf.append(("chr2", p, "indel", seqs["chr2"][p - 1:p + 1], seqs["chr2"][p - 1]))
    vcf.append(("chr2", p + 3, "symbolic", seqs["chr2"][p + 2], "<DEL>"))
    vcf.append(("chr2", p + 4, "noalt", seqs["chr2"][p + 3], "."))
    vcf.append(vcf[10])  # a duplicate of a random SNV
    vcf.sort(key=lambda r: (r[0], r[1]))
    vcf_path = write_vcf(d / "calls.vcf", vcf)
    return {"dir": d, "genome": fasta, "regions": d / "regions.tsv", "models": models,
            "vcf": vcf_path, "seqs": seqs, "breaking": breaking, "random": random_snvs,
            "motifs": d / "motifs.tsv", "patterns": d / "patterns.tsv",
            "modisco": {"peaks": d / "modisco.h5"}}


@pytest.fixture(scope="module")
def scored(world):
    scores = variants.score_variants(
        world["vcf"], world["genome"], world["regions"], world["models"],
        settings={"max_distance": 30, "null_per_variant": 50, "seed": 3},
        attribution={"n_references": 8, "seed": 0}, motifs_tsv=world["motifs"],
        patterns_tsv=world["patterns"], modisco=world["modisco"], task_type="binary")
    table = scores.table
    key = list(zip(table["chrom"], table["pos"], table["alt"], strict=True))
    table = table.assign(kind=["break" if k in world["breaking"] else
                               "random" if k in world["random"] else "other" for k in key])
    return scores, table


def test_breaking_snvs_rank_above_random_ones(scored):
    _, t = scored
    brk, rnd = t[t["kind"] == "break"], t[t["kind"] == "random"]
    assert len(brk) == 10 and len(rnd) == 16
    # measured: breaking lfc -2.7 .. -1.1, random |lfc| <= 0.04 (seeds as above)
    assert (brk["lfc"] < -1).all(), brk["lfc"].tolist()
    assert brk["lfc"].abs().min() > 10 * rnd["lfc"].abs().max()
    assert (brk["contribution_change"] < 0).all()
    assert (brk["position_contribution_change"] < 0).all()
    order = t.sort_values("pvalue", kind="stable")
    assert set(order["kind"].iloc[:10]) == {"break"}


def test_pvalues_of_breaking_snvs_are_small(scored):
    scores, t = scored
    brk, rnd = t[t["kind"] == "break"], t[t["kind"] == "random"]
    # measured: breaking p 0.0007 .. 0.011 and q <= 0.03 (null of 50 x 27 draws; 2% of
    # random substitutions hit the motif), random p 0.04 .. 1 (median 0.2)
    assert (brk["pvalue"] < 0.02).all(), brk["pvalue"].tolist()
    assert (brk["qvalue"] < 0.05).all()
    assert rnd["pvalue"].min() > brk["pvalue"].max()
    assert rnd["pvalue"].median() > 0.1
    assert (t["qvalue"] >= t["pvalue"]).all()
    assert scores.summary["null_draws"] == 50 * len(t)
    assert math.isclose(scores.summary["smallest_possible_pvalue"], 1 / (1 + 50 * len(t)))


def test_motif_hit_names_the_pattern_only_on_the_site(scored):
    _, t = scored
    brk, rnd = t[t["kind"] == "break"], t[t["kind"] == "random"]
    assert (brk["motif_hit"] == "peaks.pos_patterns.pattern_0 (GATA1)").all()
    assert (rnd["motif_hit"] == "").all()


def test_each_snv_uses_the_model_that_tested_its_region(scored, world):
    _, t = scored
    assert (t.loc[t["chrom"] == "chr1", "fold"] == 0).all()
    assert (t.loc[t["chrom"] == "chr2", "fold"] == 1).all()
    near = t[t["id"] == "near"].iloc[0]
    assert near["distance"] == 20 and near["region"] == "chr1_p1"
    assert "far" not in set(t["id"])


def test_predictions_average_both_strands(scored, world):
    import keras

    _, t = scored
    r = t[t["id"] == "rand_chr2_0"].iloc[0]
    start = CENTRES[0] - L // 2
    x = one_hot(encode(world["seqs"]["chr2"][start:start + L]))[None]
    model = keras.models.load_model(world["models"][1], compile=False)
    fwd = float(model(x)[0, 0])
    rev = float(model(x[:, ::-1, ::-1].copy())[0, 0])
    assert r["ref_pred"] == pytest.approx((fwd + rev) / 2, rel=1e-5)
    # the toy model is not strand-symmetric, so averaging matters (measured |fwd - rev| 0.06)
    assert abs(fwd - rev) > 1e-3
    got = variants.predict_both_strands(model, encode(world["seqs"]["chr2"][start:start + L])
                                        [None], batch_size=1)
    assert got[0, 0] == pytest.approx((fwd + rev) / 2, rel=1e-5)


def test_contributions_use_the_stage_references(scored, world):
    """The ref window's contributions equal what the attribution stage computes for the
    region (same seeded dinucleotide shuffles)."""
    import keras
    from peak2motif.attribution import explain_task, settings_with_defaults

    scores, t = scored
    i = int(np.flatnonzero(t["id"] == "rand_chr1_3")[0])
    r = t.iloc[i]
    regions = pd.read_csv(world["regions"], sep="\t")
    row = int(np.flatnonzero(regions["name"] == r["region"])[0])
    start = int(regions["start"][row])
    codes = encode(world["seqs"]["chr1"][start:start + L])[None]
    s = settings_with_defaults({"n_references": 8, "seed": 0, "method": "deeplift"})
    model = keras.models.load_model(world["models"][0], compile=False)
    arrays, _ = explain_task(model, codes, np.array([row]), 0, s, 0.5, 1)
    actual = arrays["hypothetical"][0] * one_hot(codes[0])
    offset = r["pos"] - 1 - start
    flank = (scores.logos.shape[2] - 1) // 2
    lo, hi = max(0, offset - flank), min(L, offset + flank + 1)
    np.testing.assert_allclose(scores.logos[i, 0, lo - offset + flank:hi - offset + flank],
                               actual[lo:hi], atol=1e-5)


def test_results_do_not_depend_on_the_chunk_size(scored, world):
    """Chunks of 4 SNVs split windows over chunks; every number stays the same."""
    scores, _ = scored
    small = variants.score_variants(
        world["vcf"], world["genome"], world["regions"], world["models"],
        settings={"max_distance": 30, "null_per_variant": 50, "seed": 3, "batch_size": 7},
        attribution={"n_references": 8, "seed": 0, "chunk_sequences": 4},
        motifs_tsv=world["motifs"], patterns_tsv=world["patterns"], modisco=world["modisco"])
    pd.testing.assert_frame_equal(small.table, scores.table, atol=1e-5)
    np.testing.assert_allclose(small.logos, scores.logos, atol=1e-5)


def test_summary_counts_what_was_skipped(scored):
    scores, t = scored
    s = scores.summary
    assert s["records"] == 30 and s["snvs"] == 28 and s["scored"] == 27
    assert s["multiallelic_records"] == 2
    assert (s["skipped_indel"], s["skipped_other"], s["skipped_no_alt"],
            s["duplicates"]) == (1, 1, 1, 1)
    assert s["outside_peaks"] == 1 and s["scored_recentred"] == 1
    assert s["null_matched_trinucleotide"] + s["null_matched_base"] + s["null_matched_any"] \
        == 27
    assert len(t) == 27 and t[["chrom", "pos", "alt"]].drop_duplicates().shape[0] == 27


def test_outputs_are_written_and_nothing_is_half_written(scored, world, tmp_path,
                                                         monkeypatch):
    scores, _ = scored
    out = {k: tmp_path / name for k, name in (
        ("table_tsv", "variants.tsv"), ("summary_tsv", "summary.tsv"),
        ("figure_png", "top_variants.png"), ("html", "variants.html"))}
    variants.write_outputs(scores, *out.values(), top=3)
    table = pd.read_csv(out["table_tsv"], sep="\t", keep_default_na=False)
    assert list(table.columns) == variants.VARIANT_COLUMNS and len(table) == 27
    assert out["figure_png"].read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64" in out["html"].read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    fresh = tmp_path / "fresh"
    monkeypatch.setattr(variants, "plot_top_variants", broken)
    with pytest.raises(RuntimeError):
        variants.write_outputs(scores, *(fresh / p.name for p in out.values()))
    assert not fresh.exists() or list(fresh.iterdir()) == []


def test_bad_ref_fails_before_any_output(world, tmp_path):
    seq = world["seqs"]["chr1"]
    wrong = next(b for b in "ACGT" if b != seq[CENTRES[0] - 1])
    vcf = write_vcf(tmp_path / "bad.vcf", [("chr1", CENTRES[0], "x", wrong, "A")])
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        variants.run_variant_stage(vcf, world["genome"], world["regions"], world["models"],
                                   table_tsv=out / "v.tsv", summary_tsv=out / "s.tsv",
                                   figure_png=out / "f.png", html=out / "v.html")
    msg = str(err.value)
    assert "bad.vcf, line 5" in msg and f"genome, which has {seq[CENTRES[0] - 1]}" in msg
    assert "record 1 (chr1:" in msg and "Fix:" in msg
    assert not out.exists()


# --- reading the VCF (no model) -----------------------------------------------------------


def test_unknown_chromosome_names_the_record_and_the_prefix_fix(world, tmp_path):
    vcf = write_vcf(tmp_path / "nochr.vcf", [("1", 100, ".", "A", "C")],
                    header="##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\t"
                           "INFO\n")
    with pytest.raises(InputError) as err:
        variants.read_vcf(vcf, world["genome"])
    msg = str(err.value)
    assert "nochr.vcf, line 3" in msg and "chromosome '1' is not in the genome" in msg
    assert "with a 'chr' prefix (chr1)" in msg and "bcftools annotate --rename-chrs" in msg


def test_not_a_vcf_and_position_past_the_end(world, tmp_path):
    junk = tmp_path / "junk.vcf"
    junk.write_text("hello\nworld\n")
    with pytest.raises(InputError, match="cannot read the file as VCF"):
        variants.read_vcf(junk, world["genome"])
    past = write_vcf(tmp_path / "past.vcf", [("chr1", 12_001, ".", "A", "C")])
    with pytest.raises(InputError, match="past the end of chr1"):
        variants.read_vcf(past, world["genome"])
    with pytest.raises(InputError, match="VCF not found"):
        variants.read_vcf(tmp_path / "missing.vcf", world["genome"])


def test_bgzip_vcf_reads_like_plain(world, tmp_path):
    import pysam

    gz = tmp_path / "calls.vcf.gz"
    pysam.tabix_compress(str(world["vcf"]), str(gz))
    with open(gz, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    plain, packed = variants.read_vcf(world["vcf"], world["genome"]), variants.read_vcf(
        gz, world["genome"])
    pd.testing.assert_frame_equal(plain.snvs, packed.snvs)
    assert plain.counts == packed.counts
    # plain gzip (not bgzip) is refused with the command that fixes it
    gzip_path = tmp_path / "calls_gzip.vcf.gz"
    gzip_path.write_bytes(gzip.compress(world["vcf"].read_bytes()))
    with pytest.raises(InputError, match="compressed with gzip, not bgzip.*bgzip >"):
        variants.read_vcf(gzip_path, world["genome"])


def test_multiallelic_records_split_and_duplicates_drop(world, tmp_path):
    seq = world["seqs"]["chr1"]
    ref = seq[99]
    alts = [b for b in "ACGT" if b != ref]
    vcf = write_vcf(tmp_path / "m.vcf", [("chr1", 100, "m", ref, ",".join(alts)),
                                         ("chr1", 100, "again", ref, alts[0]),
                                         ("chr1", 100, "mixed", ref, f"{alts[0]}{ref},{ref}")])
    calls = variants.read_vcf(vcf, world["genome"])
    assert list(calls.snvs["alt"]) == alts and list(calls.snvs["line"]) == [5, 5, 5]
    assert calls.counts["duplicates"] == 1 and calls.counts["multiallelic_records"] == 2
    # "mixed": an insertion (skipped_indel) and ALT == REF (skipped_other)
    assert calls.counts["skipped_indel"] == 1 and calls.counts["skipped_other"] == 1


# --- pieces -------------------------------------------------------------------------------


def test_empirical_pvalues_count_the_null_at_least_as_extreme():
    null = np.array([0.1, -0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8, 0.9])
    p = variants.empirical_pvalues(np.array([-0.85, 0.05, 2.0, np.nan]), null)
    np.testing.assert_allclose(p[:3], [(1 + 1) / 10, (1 + 9) / 10, 1 / 10])
    assert np.isnan(p[3])


def test_null_draws_match_the_trinucleotide_and_are_seeded():
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 4, (3, 200)).astype(np.uint8)
    offset = np.array([50, 120, 0])
    window_of = np.array([0, 2, 1])
    alt = np.array([(windows[w, o] + 1) % 4 for w, o in zip(window_of, offset, strict=True)],
                   np.uint8)
    seeds = np.array([[7, 0, 50, 1], [7, 0, 120, 2], [7, 1, 0, 3]])
    w, pos, a, levels = variants.null_substitutions(windows, window_of, offset, alt, 40,
                                                    seeds)
    assert levels == {"trinucleotide": 2, "base": 1, "any": 0}  # offset 0 has no left base
    for v in range(2):
        ctx = windows[window_of[v], offset[v] - 1:offset[v] + 2]
        for q in pos[v * 40:(v + 1) * 40]:
            assert q != offset[v]
            np.testing.assert_array_equal(windows[window_of[v], q - 1:q + 2], ctx)
    assert (windows[1, pos[80:]] == windows[1, 0]).all()
    np.testing.assert_array_equal(w, np.repeat(window_of, 40))
    np.testing.assert_array_equal(a, np.repeat(alt, 40))
    again = variants.null_substitutions(windows, window_of, offset, alt, 40, seeds)[1]
    np.testing.assert_array_equal(pos, again)


def test_log_fold_change_of_probabilities_and_of_linear_outputs():
    ref, alt = np.array([[0.2, 2.0]]), np.array([[0.05, 3.0]])
    np.testing.assert_allclose(variants.log_fold_change(ref, alt, "sigmoid", 1e-3),
                               np.log2((alt + 1e-3) / (ref + 1e-3)))
    np.testing.assert_allclose(variants.log_fold_change(ref, alt, "linear", 1e-3),
                               (alt - ref) / math.log(2))
    assert "1 + signal" in variants.effect_definition("linear", 1e-3)


def test_windows_nearest_centre_and_recentring():
    regions = pd.DataFrame({
        "chrom": ["c", "c", "c"], "start": [100, 150, 1000], "end": [200, 250, 1100],
        "name": ["a", "b", "n"], "kind": ["peak", "peak", "background"], "unit": "c",
        "split_0": ["test", "train", "test"], "split_1": ["train", "test", "train"],
        "peaks": [1.0, 1.0, 0.0]})
    snvs = pd.DataFrame({"chrom": ["c"] * 5, "pos": [121, 191, 261, 300, 1050]})
    got = variants.assign_windows(snvs, regions, {"c": 2000}, max_distance=20)
    # 121 -> a (centre 150 is nearer than 200), 191 -> b, 261 is 11 bp past b: re-centred
    assert list(got["region"]) == ["a", "b", "b", "", ""]
    assert list(got["fold"]) == [0, 1, 1, -1, -1]
    assert list(got["distance"]) == [0, 0, 11, -1, -1]
    assert list(got["start"][:3]) == [100, 150, 260 - 50]
