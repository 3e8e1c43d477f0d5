"""Checks of contributions: summation-to-delta, verdicts, shap, ISM and the AUROC."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from attribution_toys import toy_data, toy_model
from peak2motif import checks
from peak2motif.attribution import settings_with_defaults
from peak2motif.errors import InputError
from peak2motif.explain.keras_tools import logit_model
from peak2motif.sequences import one_hot

DEFAULTS = settings_with_defaults({})


def test_summation_to_delta_errors():
    contrib = np.array([[1.0, 2.0], [0.5, 0.5]])
    logit = np.array([3.0, 1.0])
    logit_ref = np.array([[2.0, 1.5], [0.5, 0.0]])  # deltas [[1, 1.5], [0.5, 1]]
    per_pair, per_seq = checks.summation_to_delta_errors(contrib, logit, logit_ref)
    np.testing.assert_allclose(per_pair, [[0.0, 0.5], [0.0, 0.5]])
    np.testing.assert_allclose(per_seq, [0.25, 0.25])


def test_verdicts_and_loud_failure():
    values = {"summation_to_delta_max_abs_error": 0.5, "logit_max_abs_diff": 0.0,
              "shap_correlation": 0.99, "n_sequences": 10.0, "ism_correlation": float("nan")}
    table = checks.verdicts(values, DEFAULTS)
    status = dict(zip(table["check"], table["status"], strict=True))
    # same-rule agreement is held to 0.999: 0.99 is a failure
    assert status == {"summation_to_delta_max_abs_error": "FAIL", "logit_max_abs_diff": "pass",
                      "shap_correlation": "FAIL", "n_sequences": "recorded",
                      "ism_correlation": "recorded"}
    with pytest.raises(checks.CheckFailed) as err:
        checks.raise_on_failure(table, ["Conv1D", "MaxPooling1D"])
    msg = str(err.value)
    assert "summation_to_delta_max_abs_error = 0.5 (required <= 0.001)" in msg
    assert "ig_steps" in msg and "shap_correlation" in msg and "MaxPooling1D" in msg
    checks.raise_on_failure(table[table["status"] != "FAIL"])  # nothing failed: no error


def test_approximate_methods_get_their_completeness_bound():
    values = {"summation_to_delta_max_abs_error": 0.01, "completeness_bound": 0.05}
    status = checks.verdicts(values, DEFAULTS, exact=True).set_index("check")["status"]
    assert status["summation_to_delta_max_abs_error"] == "FAIL"  # exact: held to 1e-3
    status = checks.verdicts(values, DEFAULTS, exact=False).set_index("check")["status"]
    assert status["summation_to_delta_max_abs_error"] == "pass"  # held to the run's bound
    values["summation_to_delta_max_abs_error"] = 0.06
    status = checks.verdicts(values, DEFAULTS, exact=False).set_index("check")["status"]
    assert status["summation_to_delta_max_abs_error"] == "FAIL"


def test_verify_rows_have_their_limits():
    """verify_contributions's rows: the stored sums of an approximate method are held to its
    completeness bound, the comparisons with the model files and the evaluation to
    logit_tolerance, the recomputed sample to crosscheck_tolerance."""
    values = {"verify_stored_summation_max_abs_error": 0.01, "completeness_bound": 0.05,
              "verify_evaluation_max_abs_diff": 0.0125, "verify_prediction_max_abs_diff": 0.0,
              "verify_hypothetical_relative_diff": 2e-3, "verify_sample_sequences": 64.0}
    table = checks.verdicts(values, DEFAULTS, exact=False).set_index("check")
    assert table.loc["verify_stored_summation_max_abs_error", "status"] == "pass"
    assert checks.verdicts(values, DEFAULTS, exact=True).set_index("check").loc[
        "verify_stored_summation_max_abs_error", "status"] == "FAIL"
    assert table["status"].to_dict() == {
        "verify_stored_summation_max_abs_error": "pass", "completeness_bound": "recorded",
        "verify_evaluation_max_abs_diff": "FAIL", "verify_prediction_max_abs_diff": "pass",
        "verify_hypothetical_relative_diff": "FAIL", "verify_sample_sequences": "recorded"}
    with pytest.raises(checks.CheckFailed, match="evaluate_model") as err:
        checks.raise_on_failure(checks.verdicts(values, DEFAULTS, exact=False))
    assert "verify_hypothetical_relative_diff = 0.002 (required <= 0.001)" in str(err.value)


def test_merge_values_keeps_the_worst_part():
    merged = checks.merge_values({"summation_to_delta_max_abs_error": 1e-6, "shap_correlation":
                                  0.9999, "nonfinite_contributions": 0.0, "n_positives_a": 3.0},
                                 {"summation_to_delta_max_abs_error": 1e-5, "shap_correlation":
                                  0.999, "nonfinite_contributions": 2.0, "n_positives_a": 4.0})
    assert merged == {"summation_to_delta_max_abs_error": 1e-5, "shap_correlation": 0.999,
                      "nonfinite_contributions": 2.0, "n_positives_a": 7.0}


def test_nan_in_a_checked_quantity_fails():
    values = {"summation_to_delta_max_abs_error": float("nan"), "nonfinite_contributions": 3.0}
    table = checks.verdicts(values, DEFAULTS)
    assert set(table["status"]) == {"FAIL"}
    with pytest.raises(checks.CheckFailed, match="NaN or infinite"):
        checks.raise_on_failure(table)


def test_planted_mask_and_auroc():
    windows = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [100, 200, 0]})
    planted = pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [105, 195], "end": [110, 203]})
    mask = checks.planted_mask(windows, planted, 20)
    assert mask[0].nonzero()[0].tolist() == [5, 6, 7, 8, 9]
    assert mask[1].nonzero()[0].tolist() == [0, 1, 2]
    assert not mask[2].any()
    actual = np.zeros((3, 20, 4))
    actual[..., 0] = np.where(mask, 2.0, 0.1)
    assert checks.interpretability_auroc(actual, windows, planted) == 1.0
    actual[..., 0] = np.where(mask, -0.05, 0.1)  # magnitude, not sign, and now backwards
    assert checks.interpretability_auroc(actual, windows, planted) == 0.0


def test_logit_model_needs_a_separate_output_activation():
    inner = keras.Sequential([keras.Input((10, 4)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    with pytest.raises(InputError, match="separate"):
        logit_model(inner)
    linear = keras.Sequential([keras.Input((10, 4)), keras.layers.Flatten(),
                               keras.layers.Dense(1)])
    assert logit_model(linear) is linear


def test_ism_of_a_linear_model_is_its_weights():
    model = keras.Sequential([keras.Input((12, 4)), keras.layers.Flatten(),
                              keras.layers.Dense(1), keras.layers.Activation("sigmoid")])
    w = np.random.default_rng(0).normal(size=(48, 1)).astype(np.float32)
    model.layers[1].set_weights([w, np.zeros(1, np.float32)])
    x = one_hot(np.random.default_rng(3).integers(0, 4, (2, 12)))
    ism = checks.ism_scores(model, x)
    w = w.reshape(12, 4)
    base = x.argmax(-1)
    expected = np.take_along_axis(w[None], base[..., None], -1)[..., 0] - (
        w.sum(-1)[None] - np.take_along_axis(w[None], base[..., None], -1)[..., 0]) / 3
    np.testing.assert_allclose(ism, expected, atol=1e-4)


def test_shap_contributions_add_up_and_correlation():
    model = toy_model(length=40, train=False, seed=1, layers=[
        keras.layers.Conv1D(4, 5), keras.layers.Activation("relu"),
        keras.layers.AveragePooling1D(4), keras.layers.Flatten(), keras.layers.Dense(1)])
    x = one_hot(toy_data(3, 40, seed=4)[0])
    refs = one_hot(np.random.default_rng(2).integers(0, 4, (3, 2, 40)))
    phi = checks.shap_contributions(model, x, refs)
    lm = logit_model(model)
    delta = lm.predict(x, verbose=0)[:, 0] - lm.predict(
        refs.reshape(-1, 40, 4), verbose=0)[:, 0].reshape(3, 2).mean(1)
    np.testing.assert_allclose(phi.sum((1, 2)), delta, atol=1e-4)
    assert checks.correlation(phi, phi * 2 + 1) == pytest.approx(1.0)
    assert np.isnan(checks.correlation(np.ones(4), np.arange(4)))
