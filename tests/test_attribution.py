"""The attribution stage (peak2motif.attribution) on toy datasets with a planted GATA motif:
references, selection, shards, the checks on the written arrays, gathering, cross-checks."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from attribution_toys import toy_model, write_toy_dataset
from peak2motif import attribution as att
from peak2motif import contributions
from peak2motif.checks import CheckFailed
from peak2motif.errors import InputError
from peak2motif.sequences import N_CODE, encode, one_hot

FAST = {"crosscheck_sample": 0, "ism_sample": 0}


def test_references_are_seeded_per_region_and_keep_n():
    codes = np.random.default_rng(0).integers(0, 4, (20, 80)).astype(np.uint8)
    codes[3, 10:14] = N_CODE
    region = np.arange(100, 120)
    refs = att.shuffled_references(codes, region, 5, seed=1)
    assert refs.shape == (20, 5, 80) and refs.dtype == np.uint8
    # the same region gets the same references in any order or company (shards)
    np.testing.assert_array_equal(refs[7:9], att.shuffled_references(codes[7:9], region[7:9],
                                                                      5, seed=1))
    assert not np.array_equal(refs, att.shuffled_references(codes, region, 5, seed=2))
    assert att.check_shuffles(codes, refs) == {"reference_identical_fraction": 0.0,
                                               "reference_dinucleotide_mismatches": 0.0,
                                               "reference_moved_n": 0.0}
    assert (refs[3][:, 10:14] == N_CODE).all()


def test_check_shuffles_catches_identity_moved_n_and_broken_shuffles():
    # deeplift issue #136: a sequence whose only dinucleotide shuffle is itself
    codes = encode("AAAAAAAAAAAAAAAACCCCCCCC")[None]
    refs = att.shuffled_references(codes, np.array([0]), 3, seed=0)
    assert att.check_shuffles(codes, refs)["reference_identical_fraction"] == 1.0
    broken = np.random.default_rng(0).permutation(codes[0])[None, None]
    assert att.check_shuffles(codes, broken)["reference_dinucleotide_mismatches"] == 1.0
    with_n = encode("ACGTNNACGTACGT")[None]
    moved = encode("NNACGTACGTACGT")[None, None]
    assert att.check_shuffles(with_n, moved)["reference_moved_n"] == 1.0


def test_fixed_references_keep_n_too():
    np.testing.assert_allclose(att.fixed_reference("uniform", 3), 0.25)
    assert att.fixed_reference("zeros", 3).sum() == 0
    np.testing.assert_allclose(att.fixed_reference("gc", 2, gc=0.4)[0], [0.3, 0.2, 0.2, 0.3])
    with pytest.raises(InputError, match="reference"):
        att.fixed_reference("shuffle", 3)
    assert att.gc_fraction(encode("GGCCATNN")) == pytest.approx(4 / 6)
    settings = att.settings_with_defaults({"reference": "uniform"})
    refs, ref_codes = att.references(encode("ACNT")[None], np.array([0]), settings, 0.5)
    assert ref_codes is None and refs.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(refs[0, 0].sum(-1), [1, 1, 0, 1])
    with pytest.raises(InputError, match="unknown key"):
        att.settings_with_defaults({"n_refs": 3})


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attr")
    data = write_toy_dataset(folder / "data", n=240, length=100, n_chars=5)
    model = toy_model(length=100, n=800)
    model.save(folder / "model.keras")
    data["model"] = str(folder / "model.keras")
    data["folder"] = folder
    return data


def _run(toy, name, settings, model=None, **kwargs):
    out = toy["folder"] / name
    out.mkdir(exist_ok=True)
    s = {"method": "deeplift", **FAST, **settings}
    table = att.compute_contributions(model or toy["model"], toy["splits"], out / "c.h5",
                                      out / "checks.tsv", s, threads=1, **kwargs)
    return table, out


def test_selection_explains_positives_and_matched_negatives(toy):
    sel = att.select([toy["splits"]["test"]], negatives_ratio=0.5, seed=0)
    labels = sel.labels[:, 0]
    rows, positive = sel.explained["peaks"], sel.positive["peaks"]
    assert (labels[rows[positive]] == 1).all() and (labels[rows[~positive]] == 0).all()
    assert (~positive).sum() == np.ceil(0.5 * positive.sum())
    assert np.all(np.diff(sel.region_index) > 0)  # region order
    shards = [att.shard_of(sel, k, 3) for k in range(3)]
    assert sum(len(s.codes) for s in shards) == len(sel.codes)
    assert sum(len(s.explained["peaks"]) for s in shards) == len(rows)


def test_shards_read_only_their_own_rows(toy, monkeypatch):
    """A shard job selects on labels only and reads its own sequences (memory of the shard,
    not of the fold): the same codes as slicing the whole selection, and no other row."""
    paths = [toy["splits"][x] for x in ("train", "valid", "test")]
    whole = att.select(paths, negatives_ratio=1.0, seed=0)
    lazy = att.select(paths, negatives_ratio=1.0, seed=0, codes=False)
    assert lazy.codes is None and len(lazy) == len(whole.codes)
    assert att.gc_of_selection(lazy) == att.gc_fraction(whole.codes)
    requested = []
    blocks = att._blocks
    monkeypatch.setattr(att, "_blocks", lambda path, rows, block=4096: (
        requested.append(len(rows)) or blocks(path, rows, block=7)))
    for k in range(3):
        requested.clear()
        part = att.read_codes(att.shard_of(lazy, k, 3))
        ref = att.shard_of(whole, k, 3)
        np.testing.assert_array_equal(part.codes, ref.codes)
        np.testing.assert_array_equal(part.region_index, ref.region_index)
        assert sum(requested) == len(ref.codes) < len(whole.codes)
        for t in ref.explained:
            np.testing.assert_array_equal(part.explained[t], ref.explained[t])


def test_compute_contributions_writes_checked_arrays(toy):
    table, out = _run(toy, "default", {"negatives_ratio": 1.0})
    value = table.set_index("check")["value"]
    status = table.set_index("check")["status"]
    # native DeepLIFT is exact: summation-to-delta at float round-off, on the stored arrays too
    assert value["summation_to_delta_max_abs_error"] < 1e-4
    assert value["stored_summation_max_abs_error"] < 1e-4
    assert value["logit_max_abs_diff"] < 1e-4
    assert value["reference_moved_n"] == 0 and value["n_references"] == 10
    assert (status[status != "recorded"] == "pass").all()
    c = contributions.read_task(out / "c.h5", "peaks")
    assert c.hypothetical.shape == c.onehot.shape and c.onehot.shape[1:] == (100, 4)
    assert c.positive.sum() == (~c.positive).sum() > 0
    # the stored arrays add up: sum(hypothetical x one-hot) = mean(logit - logit_ref)
    np.testing.assert_allclose(c.actual.sum((1, 2)), c.logit_delta, atol=1e-4)
    assert (c.onehot[:, 2:7] == 0).all()  # the N bases
    with h5py.File(out / "c.h5") as h5:
        assert h5.attrs["method"] == "deeplift" and list(h5.attrs["tasks"]) == ["peaks"]
        assert h5["prediction"].shape == (len(h5["codes"]), 1)


def test_moving_n_in_references_fails_a_check(toy, monkeypatch):
    """Issue 9 defect 3: references that put bases where the input has N."""
    from peak2motif import sequences

    def moving_n(codes, rngs, n):  # the old shuffle: N as a fifth letter that moves
        from deeplift.dinuc_shuffle import dinuc_shuffle

        return np.stack([sequences.codes_from_one_hot(
            np.asarray(dinuc_shuffle(one_hot(c), n, rng)))
            for c, rng in zip(codes, rngs, strict=True)])

    monkeypatch.setattr(att, "dinuc_shuffles", moving_n)
    with pytest.raises(CheckFailed, match="reference_moved_n|stored_summation"):
        _run(toy, "moving_n", {})


def test_shards_give_the_same_numbers(toy):
    _, one = _run(toy, "one", {"shards": 1})
    parts = [_run(toy, f"part{k}", {"shards": 3}, shard=k)[1] / "c.h5" for k in range(3)]
    contributions.gather(parts, toy["folder"] / "gathered.h5")
    a = contributions.read_task(one / "c.h5", "peaks")
    b = contributions.read_task(toy["folder"] / "gathered.h5", "peaks")
    np.testing.assert_array_equal(a.region_index, b.region_index)
    np.testing.assert_allclose(a.hypothetical, b.hypothetical, atol=1e-6)
    np.testing.assert_array_equal(a.onehot, b.onehot)


def test_a_shard_killed_midway_leaves_nothing_and_its_rerun_matches(toy, monkeypatch):
    """Issue 10: a failed or preempted shard writes no file a rerun would trust, and its
    rerun gives the numbers an uninterrupted run gives."""
    from peak2motif import explain

    real = explain.explain
    calls = {"n": 0}

    def dies_on_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("preempted")
        return real(*args, **kwargs)

    monkeypatch.setattr(explain, "explain", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        _run(toy, "killed", {"shards": 2, "chunk_sequences": 20}, shard=1)
    out = toy["folder"] / "killed"
    assert not (out / "c.h5").exists() and not list(out.glob(".c.h5.*"))
    monkeypatch.setattr(explain, "explain", real)
    _run(toy, "killed", {"shards": 2, "chunk_sequences": 20}, shard=1)
    _run(toy, "whole", {"shards": 2}, shard=1)
    a = contributions.read_task(out / "c.h5", "peaks")
    b = contributions.read_task(toy["folder"] / "whole" / "c.h5", "peaks")
    np.testing.assert_allclose(a.hypothetical, b.hypothetical, atol=1e-6)


def test_every_task_of_a_multitask_model_is_explained_and_crosschecked(tmp_path):
    data = write_toy_dataset(tmp_path / "mt", n=150, length=100, tasks=("a", "b", "c"))
    model = toy_model(length=100, n=600, outputs=3)
    model.save(tmp_path / "mt.keras")
    table = att.compute_contributions(tmp_path / "mt.keras", data["splits"], tmp_path / "c.h5",
                                      tmp_path / "checks.tsv", {"method": "deeplift", **FAST})
    assert set(contributions.task_names(tmp_path / "c.h5")) == {"a", "b", "c"}
    value = table.set_index("check")["value"]
    assert value["n_positives_c"] < value["n_positives_a"]
    cross = att.crosscheck(tmp_path / "mt.keras", data["splits"], tmp_path / "x.tsv",
                           {"method": "deeplift", "crosscheck_sample": 6, "ism_sample": 2},
                           {})
    v = cross.set_index("check")["value"]
    # shap reads one output column per task (the Keras 3 slice bug made this crash)
    assert v["shap_correlation"] > 0.999
    assert v["crosscheck_sequences_a"] == v["crosscheck_sequences_c"] == 6


def test_gather_writes_one_file_one_table_and_a_figure(toy):
    parts = [_run(toy, f"g{k}", {"shards": 2}, shard=k)[1] for k in range(2)]
    out = toy["folder"] / "gather"
    table = att.gather_contributions(
        [p / "c.h5" for p in parts], [p / "checks.tsv" for p in parts], [], toy["regions"],
        out / "all.h5", out / "checks.tsv", out / "checks.html", out / "top.png",
        {"method": "deeplift"}, planted_tsv=toy["planted"])
    value = table.set_index("check")["value"]
    # 0.76 measured on this 8-epoch toy model; the check here is that gathering computes it
    # on the planted truth (the suite's real figures are in BENCHMARKS.md)
    assert value["jobs"] == 2 and value["interpretability_auroc"] > 0.7
    assert pd.read_csv(out / "checks.tsv", sep="\t").columns.tolist() == ["check", "value"]
    assert '<span class="pass">pass</span>' in (out / "checks.html").read_text()
    assert (out / "top.png").read_bytes()[:4] == b"\x89PNG"
