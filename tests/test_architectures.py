"""Every model the config offers is explained, with every check passing (issue 9).

Each architecture trains briefly on a small simulation and goes through the attribution stage
(every fold x shard job, the cross-check job, gathering). The method is what
``attribution: method: auto`` picks: native DeepLIFT for cnn (any dilation, max pooling) and
cnn_residual, integrated gradients (with its completeness bound) for cnn_lstm and
cnn_attention. A model the chosen method cannot explain is refused when the config is read.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import run_snakemake

pytestmark = pytest.mark.slow

ARCHITECTURES = {
    "dilated": {"conv_blocks": [{"filters": 16, "kernel_size": 9, "dilation": 2},
                                {"filters": 16, "kernel_size": 5, "dilation": 3}]},
    "max_pool": {"conv_blocks": [{"filters": 16, "kernel_size": 11, "pool_type": "max"},
                                 {"filters": 16, "kernel_size": 5, "pool_type": "max"}],
                 "global_pooling": "max"},
    "residual": {"architecture": "cnn_residual", "residual": {"layers": 3},
                 "conv_blocks": [{"filters": 16, "kernel_size": 11}]},
    "lstm": {"architecture": "cnn_lstm", "recurrent": {"units": 8},
             "conv_blocks": [{"filters": 16, "kernel_size": 11}]},
    "attention": {"architecture": "cnn_attention", "attention": {"heads": 2, "key_dim": 8},
                  "conv_blocks": [{"filters": 16, "kernel_size": 11}]},
}
METHOD = {"dilated": "deeplift", "max_pool": "deeplift", "residual": "deeplift",
          "lstm": "integrated_gradients", "attention": "integrated_gradients"}


def _config(name: str, model: dict) -> dict:
    return {
        "datasets": {name: {"genome": "resources/small/genome.fa",
                            "peaks": "resources/small/peaks.narrowPeak"}},
        "simulate": {"small": {"seed": 5, "n_chromosomes": 3, "chromosome_length": 600_000,
                               "n_peaks": 300, "motifs": ["MA0139.2"]}},
        "model": {**model, "dense_blocks": []},
        "training": {"epochs": 3, "threads": 2},
        "attribution": {"shards": 2, "crosscheck_sample": 4, "ism_sample": 1,
                        "negatives_ratio": 0.5, "ig_steps": 16},
    }


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_architecture_is_explained_with_every_check_passing(arch, tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_config(arch, ARCHITECTURES[arch])))
    run_snakemake(tmp_path, "--cores", "2", f"results/{arch}/contributions/checks.tsv",
                  configfile=tmp_path / "c.yaml")
    checks = pd.read_csv(tmp_path / f"results/{arch}/contributions/checks.tsv",
                         sep="\t").set_index("check")["value"]
    html = (tmp_path / f"results/{arch}/contributions/checks.html").read_text()
    assert "FAIL</span>" not in html
    assert METHOD[arch] in html
    assert checks["jobs"] == 2 and checks["nonfinite_contributions"] == 0
    if METHOD[arch] == "deeplift":  # exact: float32 round-off
        assert checks["summation_to_delta_max_abs_error"] < 1e-4
        if "shap_correlation" in checks:  # shap cannot explain global max pooling
            assert checks["shap_correlation"] >= 0.999
    else:  # approximate, within the method's completeness bound
        assert checks["summation_to_delta_max_abs_error"] < 0.05


def test_a_model_the_method_cannot_explain_is_refused_before_training(tmp_path):
    config = _config("refused", ARCHITECTURES["lstm"])
    config["attribution"]["method"] = "deeplift"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", configfile=tmp_path / "c.yaml", check=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "config key 'attribution: method'" in out and "integrated_gradients" in out
    assert "Traceback" not in out
