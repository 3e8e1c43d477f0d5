"""References, selection and the whole attribution stage on a toy dataset (GATA planted)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from attribution_toys import toy_model, write_toy_dataset
from peak2motif import attribution as att
from peak2motif.checks import CheckFailed
from peak2motif.errors import InputError
from peak2motif.sequences import encode, one_hot


def test_dinuc_shuffles_are_seeded_really_shuffled_and_keep_dinucleotides():
    codes = np.random.default_rng(0).integers(0, 4, (20, 80)).astype(np.uint8)
    codes[3, 10:14] = 4  # an N stretch stays N
    refs = att.dinuc_shuffle_codes(codes, 5, seed=1)
    assert refs.shape == (20, 5, 80) and refs.dtype == np.uint8
    np.testing.assert_array_equal(refs, att.dinuc_shuffle_codes(codes, 5, seed=1))
    assert not np.array_equal(refs, att.dinuc_shuffle_codes(codes, 5, seed=2))
    report = att.check_shuffles(codes, refs)
    assert report == {"reference_identical_fraction": 0.0,
                      "reference_dinucleotide_mismatches": 0.0}
    assert (refs[3] == 4).sum() == 5 * 4


def test_check_shuffles_catches_identity_and_broken_shuffles():
    # deeplift issue #136: a sequence whose only dinucleotide shuffle is itself
    codes = encode("AAAAAAAAAAAAAAAACCCCCCCC")[None]
    refs = att.dinuc_shuffle_codes(codes, 3, seed=0)
    assert att.check_shuffles(codes, refs)["reference_identical_fraction"] == 1.0
    broken = np.random.default_rng(0).permutation(codes[0])[None, None]
    assert att.check_shuffles(codes, broken)["reference_dinucleotide_mismatches"] == 1.0


def test_dinucleotide_counts():
    counts = att.dinucleotide_counts(encode("ACGTA")[None])[0]
    assert counts.sum() == 4
    assert counts[0 * 5 + 1] == counts[1 * 5 + 2] == counts[2 * 5 + 3] == counts[3 * 5 + 0] == 1


def test_fixed_references():
    np.testing.assert_allclose(att.fixed_reference("uniform", 3), 0.25)
    assert att.fixed_reference("zeros", 3).sum() == 0
    gc = att.fixed_reference("gc", 2, gc=0.4)
    np.testing.assert_allclose(gc[0], [0.3, 0.2, 0.2, 0.3])
    with pytest.raises(InputError, match="reference"):
        att.fixed_reference("shuffle", 3)
    assert att.gc_fraction(encode("GGCCATNN")) == pytest.approx(4 / 6)


def test_resolve_task_and_unknown_settings():
    assert att.resolve_task(["a", "b"], None) == 0
    assert att.resolve_task(["a", "b"], "b") == 1
    with pytest.raises(InputError, match="'c' is not one of"):
        att.resolve_task(["a", "b"], "c")
    with pytest.raises(InputError, match="unknown key"):
        att.settings_with_defaults({"n_refs": 3})


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attr")
    data = write_toy_dataset(folder / "data", n=240, length=100)
    model = toy_model(length=100, n=800)
    model.save(folder / "model.h5")
    data["model"] = str(folder / "model.h5")
    data["folder"] = folder
    return data


def _run(toy, name, settings, model=None):
    out = toy["folder"] / name
    out.mkdir()
    paths = dict(out_h5=out / "c.h5", out_checks=out / "checks.tsv",
                 out_checks_html=out / "checks.html", out_png=out / "c.png")
    table = att.compute_contributions(
        model or toy["model"], toy["splits"], toy["regions"], settings=settings,
        planted_tsv=toy["planted"], threads=1, **paths)
    return table, paths


def test_compute_contributions_writes_checked_outputs(toy):
    table, paths = _run(toy, "default", {"shap_sample": 4, "ism_sample": 2, "max_sequences": 30})
    checks = pd.read_csv(paths["out_checks"], sep="\t").set_index("check")["value"]
    assert list(pd.read_csv(paths["out_checks"], sep="\t").columns) == ["check", "value"]
    assert checks["summation_to_delta_max_abs_error"] <= 1e-3
    assert checks["logit_max_abs_diff"] <= 1e-3
    assert checks["shap_correlation"] >= 0.9
    assert "shap_correlation_GenomicsDefault" in checks
    assert checks["n_references"] == 10
    assert checks["interpretability_auroc"] > 0.6  # a few epochs on a toy; the demo reaches more
    assert (table["status"] != "FAIL").all()
    assert "summation_to_delta_max_abs_error" in paths["out_checks_html"].read_text()
    assert paths["out_png"].read_bytes()[:4] == b"\x89PNG"
    with h5py.File(paths["out_h5"]) as h5:
        onehot, hyp, actual = h5["onehot"][:], h5["hypothetical"][:], h5["actual"][:]
        pred, idx = h5["prediction"][:], h5["region_index"][:]
        assert h5.attrs["mode"] == "GenomicsDefault" and h5.attrs["n_references"] == 10
    assert onehot.shape == hyp.shape == actual.shape == (30, 100, 4)
    np.testing.assert_allclose(actual, hyp * onehot)
    assert pred.shape == (30, 1) and np.all(np.diff(pred[:, 0]) <= 0)  # ranked
    labels = pd.read_csv(toy["regions"], sep="\t")["peaks"].to_numpy()
    assert (labels[idx] == 1).all()  # positives only, by default from the test split
    test_rows = set(h5py.File(toy["splits"]["test"])["region_index"][:])
    assert set(idx) <= test_rows
    np.testing.assert_array_equal(onehot, one_hot(h5py.File(toy["splits"]["test"])["codes"][:])[
        [list(h5py.File(toy["splits"]["test"])["region_index"][:]).index(i) for i in idx]])


def test_fixed_reference_and_all_splits(toy):
    _, paths = _run(toy, "uniform", {"reference": "uniform", "splits": ["train", "test"],
                                     "positives_only": False, "shap_sample": 2,
                                     "ism_sample": 0, "max_sequences": 20, "mode": "Rescale"})
    checks = pd.read_csv(paths["out_checks"], sep="\t").set_index("check")["value"]
    assert checks["n_references"] == 1 and checks["n_sequences"] == 20
    assert "ism_correlation" not in checks
    assert checks["summation_to_delta_max_abs_error"] <= 1e-3


def test_max_pooling_fails_loudly_with_what_to_change(toy):
    model = toy_model(length=100, pooling="max", n=400)
    path = toy["folder"] / "maxpool.h5"
    model.save(path)
    with pytest.raises(CheckFailed, match="summation_to_delta_max_abs_error") as err:
        _run(toy, "maxpool", {"summation_tolerance": 1e-5, "shap_sample": 0, "ism_sample": 0,
                              "max_sequences": 20}, model=str(path))
    assert "AveragePooling1D" in str(err.value) and "MaxPooling1D" in str(err.value)


def test_default_architecture_is_exact(toy):
    """The training stage's default model keeps summation-to-delta within 1e-3 (issue item 3)."""

    from peak2motif.model import build_model, with_defaults

    model = build_model(with_defaults("model"), 100, 1, "binary", seed=0)
    codes = np.random.default_rng(0).integers(0, 4, (256, 100)).astype(np.uint8)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(one_hot(codes), (codes[:, 50] == 0).astype(np.float32), epochs=1, verbose=0)
    path = toy["folder"] / "default.h5"
    model.save(path)
    table, _ = _run(toy, "default_arch", {"shap_sample": 2, "ism_sample": 0,
                                          "max_sequences": 20}, model=str(path))
    value = table.set_index("check")["value"]
    assert value["summation_to_delta_max_abs_error"] <= 1e-3
    assert value["logit_max_abs_diff"] <= 1e-3
