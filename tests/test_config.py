"""check_config turns schema violations into one sentence naming the key and the fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from peak2motif.config import check_config
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
            if key not in ("genome", "peaks", "datasets"):
                if "default" not in sub:
                    missing.append(f"{path}{key} (default)")
            if "description" not in sub:
                missing.append(f"{path}{key} (description)")
            walk(sub, f"{path}{key}.")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{path}*.")

    walk(schema, "")
    walk(schema["definitions"]["dataset"], "datasets.*.")
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
