"""check_config turns every schema violation into one line naming the key and the fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from peak2motif.config import (
    SECTIONS,
    check_config,
    dataset_settings,
    fill_defaults,
    load_schema,
)
from peak2motif.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "config.schema.yaml"
MINIMAL = {"datasets": {"mine": {"genome": "g.fa", "peaks": "p.bed"}}}


def test_demo_and_minimal_configs_are_valid():
    check_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), SCHEMA)
    check_config(copy.deepcopy(MINIMAL), SCHEMA)


def test_every_schema_key_has_description_and_default():
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = []

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            if key not in ("genome", "peaks", "vcf", "datasets", *SECTIONS):
                if "default" not in sub:
                    missing.append(f"{path}{key} (default)")
            if "description" not in sub:
                missing.append(f"{path}{key} (description)")
            walk(sub, f"{path}{key}.")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{path}*.")
        if isinstance(node.get("items"), dict):  # list items (conv_blocks, dense_blocks)
            walk(node["items"], f"{path}[].")

    walk(schema, "")
    walk(schema["definitions"]["dataset"], "datasets.*.")
    # a dataset's section overrides are checked against the top-level section of the name
    for section in SECTIONS:
        entry = schema["definitions"]["dataset"]["properties"][section]
        assert entry["$ref"] == "#/definitions/override"
    assert not missing, missing


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda c: c["datasets"]["mine"].update(gnome="x"), "datasets: mine: gnome", "genome"),
        (lambda c: c.update(data={"sequence_length": "long"}), "data: sequence_length", "integer"),
        (lambda c: c.update(data={"negatives": {"strategy": "gc"}}), "data: negatives: strategy",
         "gc_matched"),
        (lambda c: c["datasets"]["mine"].pop("peaks"), "datasets: mine", "peaks"),
        (lambda c: c.update(unknown_section={}), "unknown_section", "remove it"),
    ],
)
def test_errors_name_the_key_and_the_fix(change, key, words):
    config = copy.deepcopy(MINIMAL)
    change(config)
    with pytest.raises(InputError) as err:
        check_config(config, SCHEMA)
    message = str(err.value)
    assert f"config key '{key}" in message
    assert words in message
    assert "Fix:" in message


def test_dataset_sections_override_the_top_level_ones():
    """Issue 11: a fly dataset next to a human one, each matched against its own taxon."""
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["fly"] = {"genome": "f.fa", "peaks": "f.bed",
                                 "motifs": {"jaspar_tax_group": ["insects"]},
                                 "training": {"optimizer": {"learning_rate": 0.002}}}
    config["training"] = {"epochs": 7, "optimizer": {"name": "nadam"}}
    check_config(config, SCHEMA)
    schema = load_schema(SCHEMA)
    fly = dataset_settings(config, "fly", schema)
    mine = dataset_settings(config, "mine", schema)
    assert fly["motifs"]["jaspar_tax_group"] == ["insects"]
    assert mine["motifs"]["jaspar_tax_group"] == ["vertebrates"]
    # merged key by key: the top-level epochs and optimizer name stay, the rate is the fly's
    assert fly["training"]["epochs"] == 7 and fly["training"]["optimizer"]["name"] == "nadam"
    assert fly["training"]["optimizer"]["learning_rate"] == 0.002
    assert mine["training"]["optimizer"]["learning_rate"] != 0.002


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"motifs": {"jaspar_taxgroup": ["insects"]}},
         r"config key 'datasets: fly: motifs: jaspar_taxgroup'.*did you mean 'jaspar_tax_group'"),
        ({"training": {"epochs": "many"}}, r"config key 'datasets: fly: training: epochs'"),
    ],
)
def test_bad_dataset_overrides_name_the_dataset_key(override, words):
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["fly"] = {"genome": "f.fa", "peaks": "f.bed", **override}
    for check in (lambda: check_config(config, SCHEMA),
                  lambda: dataset_settings(config, "fly", load_schema(SCHEMA))):
        with pytest.raises(InputError, match=words):
            check()


THREE_MISTAKES = {
    "datasets": {"mine": {"genome": "g.fa", "peaks": "p.bed"}},
    "data": {"sequence_lenght": 200},                 # unknown key
    "training": {"epochs": "many"},                   # wrong type
    "motifs": {"multiple_testing": "per_motif"},      # bad enum value
}


def test_every_config_error_is_reported_at_once():
    """Issue 21: a config with three mistakes in three sections shows all three, one line
    each with its key and fix, in one message."""
    with pytest.raises(InputError) as err:
        check_config(copy.deepcopy(THREE_MISTAKES), SCHEMA)
    lines = str(err.value).splitlines()
    assert lines[0] == "3 errors in the config:"
    assert len(lines) == 4 and all("Fix:" in line for line in lines[1:]), lines
    assert "config key 'data: sequence_lenght'" in lines[1]
    assert "did you mean 'sequence_length'" in lines[1]
    assert "config key 'motifs: multiple_testing'" in lines[2] and "per_pattern" in lines[2]
    assert "config key 'training: epochs'" in lines[3] and "integer" in lines[3]


def test_dataset_override_errors_join_the_top_level_ones_once():
    """A top-level error is reported once, not again for each dataset that inherits it; a
    dataset's own mistake is named with its dataset."""
    config = copy.deepcopy(THREE_MISTAKES)
    config["datasets"]["fly"] = {"genome": "f.fa", "peaks": "f.bed",
                                 "training": {"batch_size": 0}, "motifs": {"seed": 1}}
    with pytest.raises(InputError) as err:
        check_config(config, SCHEMA)
    message = str(err.value)
    assert message.startswith("4 errors in the config:")
    assert message.count("training: epochs") == 1
    assert "config key 'datasets: fly: training: batch_size'" in message


def test_many_errors_are_capped_with_a_count():
    config = copy.deepcopy(MINIMAL)
    config["data"] = {f"key_{i}": i for i in range(14)}
    with pytest.raises(InputError) as err:
        check_config(config, SCHEMA)
    lines = str(err.value).splitlines()
    assert lines[0] == "14 errors in the config:"
    assert len(lines) == 1 + 10 + 1 and lines[-1].strip() == "and 4 more"


def test_variants_can_be_overridden_inside_one_dataset():
    """README: a dataset may override any section but `sweep`. `variants` is also where the
    dataset names its VCF, so the override is `variants: {vcf: PATH, KEY: value}`."""
    from peak2motif.config import dataset_vcf

    config = copy.deepcopy(MINIMAL)
    config["variants"] = {"null_per_variant": 50}
    config["datasets"]["near"] = {"genome": "g.fa", "peaks": "p.bed",
                                  "variants": {"vcf": "near.vcf", "max_distance": 500}}
    config["datasets"]["plain"] = {"genome": "g.fa", "peaks": "p.bed", "variants": "p.vcf"}
    check_config(config, SCHEMA)
    schema = load_schema(SCHEMA)
    near, plain, mine = (dataset_settings(config, n, schema)["variants"]
                         for n in ("near", "plain", "mine"))
    assert near["max_distance"] == 500 and near["null_per_variant"] == 50
    assert plain["max_distance"] == 0 and plain["null_per_variant"] == 50
    assert "vcf" not in near and mine == plain
    assert [dataset_vcf(config["datasets"][n]) for n in ("near", "plain", "mine")] == [
        "near.vcf", "p.vcf", None]
    config["datasets"]["near"]["variants"] = {"vcf": "near.vcf", "max_distanse": 5}
    with pytest.raises(InputError, match=r"'datasets: near: variants: max_distanse'.*"
                                         r"did you mean 'max_distance'"):
        check_config(config, SCHEMA)
    config["datasets"]["near"]["variants"] = {"max_distance": 5}
    with pytest.raises(InputError, match=r"'datasets: near: variants'.*'vcf' is a required"):
        check_config(config, SCHEMA)


def test_sweep_is_top_level_only():
    """The sweep's grid makes the training jobs of every dataset: a dataset cannot set it."""
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["mine"]["sweep"] = {"grid": {"training.epochs": [1, 2]}}
    with pytest.raises(InputError, match=r"'datasets: mine: sweep'.*top-level section only"):
        check_config(config, SCHEMA)


def test_config_readme_tables_are_made_from_the_schema():
    """config/README.md shows every key with the schema's default: written once, not twice."""
    from peak2motif.config import update_readme

    readme = REPO / "config" / "README.md"
    assert update_readme(readme) == readme.read_text(), (
        "config/README.md is out of date: run PYTHONPATH=scripts .venv/bin/python -m "
        "peak2motif.config")
    schema = load_schema(SCHEMA)
    text = readme.read_text()
    for section in ("data", "model", "training", "attribution", "motifs", "variants"):
        for key in schema["properties"][section]["properties"]:
            assert f"`{key}" in text, f"{section}: {key} missing from config/README.md"


# --- fill_defaults (moved here from test_provenance.py: one place per contract) ---

TOY_SCHEMA = {
    "type": "object",
    "definitions": {
        "item": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "mode": {"type": "string", "default": "auto"},
            },
        }
    },
    "properties": {
        "items": {"type": "object", "additionalProperties": {"$ref": "#/definitions/item"}},
        "opts": {
            "type": "object",
            "default": {},
            "properties": {
                "seed": {"type": "integer", "default": 0},
                "inner": {
                    "type": "object",
                    "default": {},
                    "properties": {"ratio": {"type": "number", "default": 1.5}},
                },
            },
        },
        "absent_no_default": {"type": "string"},
    },
}


def test_fill_defaults_fills_nested_and_named_entries():
    filled = fill_defaults({"items": {"a": {"path": "x"}}, "opts": {"seed": 7}}, TOY_SCHEMA)
    assert filled == {
        "items": {"a": {"path": "x", "mode": "auto"}},
        "opts": {"seed": 7, "inner": {"ratio": 1.5}},
    }


def test_fill_defaults_creates_missing_sections_and_keeps_input_intact():
    given = {"items": {}}
    filled = fill_defaults(given, TOY_SCHEMA)
    assert filled["opts"] == {"seed": 0, "inner": {"ratio": 1.5}}
    assert "absent_no_default" not in filled
    assert given == {"items": {}}


def test_fill_defaults_is_idempotent_on_the_real_schema():
    schema = load_schema(SCHEMA)
    cfg = {"datasets": {"d": {"genome": "g.fa", "peaks": "p.bed"}}}
    once = fill_defaults(cfg, schema)
    assert fill_defaults(once, schema) == once
    assert once["datasets"]["d"]["task"] == "auto"
    assert once["data"]["negatives"]["strategy"] == "gc_matched"


def test_the_workflow_takes_a_dataset_variants_override(tmp_path):
    """The mapping form reaches the workflow: the VCF is checked before training and scored."""
    from conftest import run_snakemake

    (tmp_path / "g.fa").write_text(">chr1\nACGTACGTAC\n")
    (tmp_path / "p.bed").write_text("chr1\t0\t5\n")
    (tmp_path / "calls.vcf").write_text("##fileformat=VCFv4.2\n")
    (tmp_path / "my.yaml").write_text(yaml.safe_dump({"datasets": {"mine": {
        "genome": "g.fa", "peaks": "p.bed",
        "variants": {"vcf": "calls.vcf", "max_distance": 7}}}}))
    plan = run_snakemake(tmp_path, "-n", configfile=tmp_path / "my.yaml").stdout
    for rule in ("check_variants", "score_variants"):
        assert f"rule {rule}:\n    input: calls.vcf" in plan, plan[-3000:]
