"""Injected faults (issue 21): each fault of the attribution stage fails a named check.

Every test injects one fault into a small, correct run of the stage on a toy dataset (the
code monkeypatched, or the arrays of its files edited), then asserts which check fails and
with what value. ``test_a_correct_run_passes`` is the baseline: the same run unbroken passes
every check, with the values correct runs reach.
"""

from __future__ import annotations

import shutil

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
from attribution_toys import toy_model, write_toy_dataset
from peak2motif import attribution as att
from peak2motif import contributions
from peak2motif.checks import CheckFailed
from peak2motif.errors import InputError
from peak2motif.evaluate import evaluate_fold
from peak2motif.sequences import one_hot
from peak2motif.verify import verify_contributions

LENGTH = 100
FAST = {"crosscheck_sample": 0, "ism_sample": 0}


def _stage(folder, data, model_path, settings=None, shards=2):
    """compute_contributions (``shards`` jobs, one fold), gather, the evaluation's predictions.
    Returns the folder."""
    s = {"method": "deeplift", "shards": shards, **FAST, **(settings or {})}
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        att.compute_contributions(model_path, data["splits"], folder / f"shard_{k}.h5",
                                  folder / f"shard_{k}.tsv", s, shard=k)
    att.gather_contributions([folder / f"shard_{k}.h5" for k in range(shards)],
                             [folder / f"shard_{k}.tsv" for k in range(shards)], [],
                             data["regions"], folder / "contributions.h5",
                             folder / "job_checks.tsv", None, folder / "top.png", s)
    evaluate_fold(model_path, data["splits"], data["regions"], folder / "metrics.tsv",
                  folder / "test_predictions.tsv", fold=0)
    return folder


def _verify(folder, model_path, settings=None):
    """verify_contributions on a stage folder; returns (values, status, error or None)."""
    s = {"method": "deeplift", **FAST, **(settings or {})}
    error = None
    try:
        verify_contributions(folder / "contributions.h5", [model_path],
                             [folder / "test_predictions.tsv"], folder / "job_checks.tsv",
                             folder / "checks.tsv", None, s)
    except CheckFailed as err:
        error = str(err)
    table = pd.read_csv(folder / "checks.tsv", sep="\t").set_index("check")["value"]
    status = att.checks.verdicts(table.to_dict(), att.settings_with_defaults(s)).set_index(
        "check")["status"]
    return table, status, error


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    data = write_toy_dataset(folder / "data", n=240, length=LENGTH)
    model = toy_model(length=LENGTH, n=800)
    model.save(folder / "model.keras")
    data["model"] = folder / "model.keras"
    data["folder"] = folder
    data["correct"] = _stage(folder / "correct", data, data["model"])
    return data


def _copy(toy, name):
    out = toy["folder"] / name
    shutil.copytree(toy["correct"], out)
    return out


def test_a_correct_run_passes(toy):
    value, status, error = _verify(_copy(toy, "baseline"), toy["model"])
    assert error is None, error
    assert (status[status != "recorded"] == "pass").all()
    # what a correct run reaches (the limits are 1e-3)
    assert value["verify_stored_summation_max_abs_error"] < 1e-4
    assert value["verify_logit_max_abs_diff"] < 1e-4
    assert value["verify_prediction_max_abs_diff"] < 1e-5
    assert value["verify_evaluation_max_abs_diff"] < 1e-5
    assert value["verify_hypothetical_relative_diff"] < 1e-4
    assert value["verify_evaluation_regions"] >= 40 and value["verify_sample_sequences"] == 64


def test_the_documented_command_on_a_results_folder(toy, tmp_path, capsys):
    """python -m peak2motif.verify results/NAME: the same checks on an existing folder; a
    broken file raises CheckFailed (the command then exits 1)."""
    import yaml
    from peak2motif.verify import main

    root = tmp_path / "results" / "toy"
    for name, to in (("contributions.h5", "contributions"), ("job_checks.tsv", "contributions"),
                     ("test_predictions.tsv", "folds/0/evaluation")):
        (root / to).mkdir(parents=True, exist_ok=True)
        shutil.copy(toy["correct"] / name, root / to / name)
    (root / "folds/0/model").mkdir(parents=True)
    shutil.copy(toy["model"], root / "folds/0/model/model.keras")
    (root / "provenance").mkdir()
    (root / "provenance/config.yaml").write_text(yaml.safe_dump(
        {"model": {}, "attribution": {"method": "deeplift", **FAST}}))
    assert main([str(root)]) == 0
    assert "verify_hypothetical_relative_diff" in capsys.readouterr().out
    with h5py.File(root / "contributions/contributions.h5", "r+") as h5:
        h5["task/peaks/rows"][...] = h5["task/peaks/rows"][:][::-1]
    with pytest.raises(CheckFailed, match="verify_stored_summation_max_abs_error"):
        main([str(root)])


def test_noise_at_unobserved_bases_of_the_gathered_file(toy):
    folder = _copy(toy, "noise")
    with h5py.File(folder / "contributions.h5", "r+") as h5:
        g = h5["task/peaks"]
        hyp = g["hypothetical"][:]
        onehot = one_hot(h5["codes"][:][g["rows"][:]])
        noise = np.random.default_rng(0).standard_normal(hyp.shape).astype(np.float32)
        g["hypothetical"][...] = hyp + 10 * np.abs(hyp).max() * noise * (1 - onehot)
    value, status, error = _verify(folder, toy["model"])
    # the observed bases are untouched: the stored sums still hold
    assert status["verify_stored_summation_max_abs_error"] == "pass"
    assert status["verify_hypothetical_relative_diff"] == "FAIL"
    assert value["verify_hypothetical_relative_diff"] > 10
    assert "verify_hypothetical_relative_diff" in error


def test_one_tasks_rows_permuted_in_gather(toy, monkeypatch):
    real = contributions.write

    def permuting(path, arrays, tasks, attrs):
        rows = tasks["peaks"]["rows"]
        tasks["peaks"]["rows"] = np.sort(rows)[np.random.default_rng(0).permutation(len(rows))]
        return real(path, arrays, tasks, attrs)

    folder = toy["folder"] / "permuted"
    folder.mkdir()
    for name in ("shard_0.h5", "shard_1.h5", "shard_0.tsv", "shard_1.tsv",
                 "test_predictions.tsv"):
        shutil.copy(toy["correct"] / name, folder / name)
    monkeypatch.setattr(contributions, "write", permuting)
    att.gather_contributions([folder / "shard_0.h5", folder / "shard_1.h5"],
                             [folder / "shard_0.tsv", folder / "shard_1.tsv"], [],
                             toy["regions"], folder / "contributions.h5",
                             folder / "job_checks.tsv", None, folder / "top.png",
                             {"method": "deeplift"})
    monkeypatch.undo()
    value, status, error = _verify(folder, toy["model"])
    assert status["verify_stored_summation_max_abs_error"] == "FAIL"
    assert value["verify_stored_summation_max_abs_error"] > 1.0
    assert "verify_stored_summation_max_abs_error" in error


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory):
    """A two-task toy whose tasks differ (task b: two in three motif carriers)."""
    folder = tmp_path_factory.mktemp("two_tasks")
    data = write_toy_dataset(folder / "data", n=240, length=LENGTH, tasks=("a", "b"))
    model = toy_model(length=LENGTH, train=False, outputs=2)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.fit(one_hot(data["codes"]), data["labels"], epochs=8, batch_size=32, verbose=0)
    model.save(folder / "model.keras")
    data["model"], data["folder"] = folder / "model.keras", folder
    return data


def test_task_index_off_by_one_used_consistently(two_tasks, monkeypatch):
    monkeypatch.setattr(att, "output_column",
                        lambda tasks, task: (tasks.index(task) + 1) % len(tasks))
    # the stage's own checks use the same column, so they pass
    folder = _stage(two_tasks["folder"] / "off_by_one", two_tasks, two_tasks["model"])
    monkeypatch.undo()
    value, status, error = _verify(folder, two_tasks["model"])
    assert status["verify_logit_max_abs_diff"] == "FAIL"
    assert value["verify_logit_max_abs_diff"] > 0.1
    assert "verify_logit_max_abs_diff" in error


def test_the_stage_loads_a_model_perturbed_by_one_percent(toy, monkeypatch):
    real = keras.models.load_model

    def perturbed(path, **kw):
        model = real(path, **kw)
        rng = np.random.default_rng(0)
        model.set_weights([w * (1 + 0.01 * rng.standard_normal(w.shape)).astype(w.dtype)
                           for w in model.get_weights()])
        return model

    monkeypatch.setattr(keras.models, "load_model", perturbed)
    folder = toy["folder"] / "perturbed"
    folder.mkdir()
    for k in range(2):
        att.compute_contributions(toy["model"], toy["splits"], folder / f"shard_{k}.h5",
                                  folder / f"shard_{k}.tsv", {"method": "deeplift", "shards": 2,
                                                              **FAST}, shard=k)
    monkeypatch.undo()
    att.gather_contributions([folder / "shard_0.h5", folder / "shard_1.h5"],
                             [folder / "shard_0.tsv", folder / "shard_1.tsv"], [],
                             toy["regions"], folder / "contributions.h5",
                             folder / "job_checks.tsv", None, folder / "top.png",
                             {"method": "deeplift"})
    shutil.copy(toy["correct"] / "test_predictions.tsv", folder)  # the evaluated model's
    value, status, error = _verify(folder, toy["model"])
    assert status["verify_evaluation_max_abs_diff"] == "FAIL"
    assert status["verify_prediction_max_abs_diff"] == "FAIL"
    assert value["verify_evaluation_max_abs_diff"] > 1e-3
    assert "verify_evaluation_max_abs_diff" in error


def test_each_sequence_gets_its_neighbours_references(toy, monkeypatch):
    real = att.references

    def neighbours(codes, region_index, settings, gc):
        refs, ref_codes = real(codes, region_index, settings, gc)
        return np.roll(refs, 1, axis=0), ref_codes  # the codes are still right

    monkeypatch.setattr(att, "references", neighbours)
    folder = toy["folder"] / "neighbours"
    with pytest.raises(CheckFailed, match="reference_dinucleotide_mismatches"):
        att.compute_contributions(toy["model"], toy["splits"], folder / "c.h5",
                                  folder / "c.tsv", {"method": "deeplift", **FAST})
    value = pd.read_csv(folder / "c.tsv", sep="\t").set_index("check")["value"]
    # every reference of every sequence but those that happen to share its counts
    assert value["reference_dinucleotide_mismatches"] > 0.9 * value["n_sequences"] * 10


def _wrong_fallback(z, pool, n_refs, eps=1e-7):
    """rescale_max with the |dz| < eps fallback giving 0 (as shap does) instead of the
    multiplier at the common argmax."""
    import tensorflow as tf
    from peak2motif.explain import rescale

    zx, zr, _ = rescale._split(z, n_refs)
    yx = pool(zx)
    zx_rep = tf.repeat(tf.stop_gradient(zx), n_refs, axis=0)
    yx_rep = tf.repeat(tf.stop_gradient(yx), n_refs, axis=0)

    @tf.custom_gradient
    def reference_rows(zr):
        yr = pool(zr)

        def grad(g):
            cross = tf.maximum(yx_rep, yr)
            to_x = rescale._route(pool, zx_rep, g * (cross - yr))
            to_r = rescale._route(pool, zr, g * (yx_rep - cross))
            dz = zx_rep - zr
            small = tf.abs(dz) < eps
            return tf.where(small, tf.zeros_like(dz),
                            (to_x + to_r) / tf.where(small, tf.ones_like(dz), dz))

        return yr, grad

    return tf.concat([yx, reference_rows(zr)], 0)


def test_rescale_fallback_wrong_on_a_max_pool_model(monkeypatch, tmp_path):
    from peak2motif.explain import rescale

    # The fallback is taken where a pooled input is the same for a sequence and its
    # reference: here the first 10 bases (2 bases, 8 N, whose shuffles keep them in place),
    # wider than the 9-base filters; in a genome, windows with N runs.
    data = write_toy_dataset(tmp_path / "data", n=240, length=LENGTH, n_chars=8)
    model = toy_model(length=LENGTH, n=800, pooling="max")
    model.save(tmp_path / "max.keras")
    monkeypatch.setattr(rescale, "rescale_max", _wrong_fallback)
    # the stage's checks pass: the fallback moves no contribution of an observed base
    folder = _stage(tmp_path / "stage", data, tmp_path / "max.keras")
    monkeypatch.undo()
    value, status, error = _verify(folder, tmp_path / "max.keras")
    assert status["verify_stored_summation_max_abs_error"] == "pass"
    assert status["verify_hypothetical_relative_diff"] == "FAIL"
    assert value["verify_hypothetical_relative_diff"] > 0.01
    assert "verify_hypothetical_relative_diff" in error


@pytest.fixture(scope="module", params=["cnn_lstm", "cnn_attention"])
def ig_model(request, tmp_path_factory, toy):
    """A toy recurrent or attention model (integrated gradients explains both)."""
    from explain_toys import built, small_cfg

    cfg = small_cfg(architecture=request.param, conv_blocks=[
        {"filters": 16, "kernel_size": 9, "pool_size": 4},
        {"filters": 16, "kernel_size": 3, "pool_size": 2}], dense_blocks=[{"units": 16}])
    model = built(cfg, LENGTH, epochs=6, n=600)
    path = tmp_path_factory.mktemp(request.param) / "model.keras"
    model.save(path)
    return path, cfg


@pytest.mark.parametrize("steps", [2, 4, 8])
def test_integrated_gradients_with_too_few_steps(toy, ig_model, tmp_path, steps):
    path, cfg = ig_model
    s = {"method": "integrated_gradients", "ig_steps": steps, "crosscheck_sample": 8,
         "ism_sample": 0}
    with pytest.raises(CheckFailed, match="ig_convergence_relative_diff"):
        att.crosscheck(path, toy["splits"], tmp_path / "x.tsv", s, cfg)
    value = pd.read_csv(tmp_path / "x.tsv", sep="\t").set_index("check")["value"]
    limit = att.settings_with_defaults(s)["ig_convergence_tolerance"]
    assert value["ig_convergence_relative_diff"] > limit


def test_ig_at_the_default_steps_converges(toy, ig_model, tmp_path):
    path, cfg = ig_model
    s = {"method": "integrated_gradients", "crosscheck_sample": 8, "ism_sample": 0}
    table = att.crosscheck(path, toy["splits"], tmp_path / "x.tsv", s, cfg)
    status = table.set_index("check")["status"]
    assert status["ig_convergence_relative_diff"] == "pass"


def test_gather_without_the_shard_offset_stops_before_writing(toy, monkeypatch, tmp_path):
    monkeypatch.setattr(contributions, "row_offsets", lambda sizes: np.zeros(len(sizes), int))
    shards = [toy["correct"] / "shard_0.h5", toy["correct"] / "shard_1.h5"]
    with pytest.raises(InputError, match="shard offset is wrong"):
        att.gather_contributions(shards, [toy["correct"] / "shard_0.tsv",
                                          toy["correct"] / "shard_1.tsv"], [],
                                 toy["regions"], tmp_path / "all.h5", tmp_path / "jobs.tsv",
                                 None, tmp_path / "top.png", {"method": "deeplift"})
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left
