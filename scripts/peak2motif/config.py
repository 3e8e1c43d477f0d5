"""Config checking with messages that name the key and the fix.

Snakemake's own ``validate()`` fills in the schema defaults, but its error message is a dump
of the whole schema. ``check_config`` runs first and turns the most relevant JSON Schema error
into one sentence: which key, what was expected, and how to fix it.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from peak2motif.errors import InputError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "config.schema.yaml"


def load_schema(path: str | Path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _key(path) -> str:
    return ": ".join(str(p) for p in path) or "(top level)"


def _allowed_keys(schema: dict, root: dict) -> list[str]:
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return sorted(schema.get("properties", {}))


def check_config(config: dict, schema_path: str | Path) -> None:
    """Raise :class:`InputError` naming the offending key if ``config`` breaks the schema."""
    schema = load_schema(schema_path)
    validator = jsonschema.Draft7Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    # oneOf/anyOf errors are vague; the deepest sub-error usually names the real problem.
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(error.schema, schema)
        extra = [k for k in error.instance if k not in allowed]
        bad = extra[0] if extra else "?"
        close = difflib.get_close_matches(str(bad), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise InputError(
            f"unknown key '{bad}'",
            key=_key(path + [bad]),
            fix=f"{hint}remove it or use one of: {', '.join(allowed) or '(none)'} "
            "(config/README.md documents every key)",
        )
    if error.validator == "required":
        raise InputError(
            error.message,
            key=_key(path),
            fix="add the missing key (config/README.md documents every key)",
        )
    expected = error.schema.get("description", "")
    raise InputError(
        f"{error.message}",
        key=_key(path),
        fix=(f"expected {error.validator} {error.validator_value!r}"
             + (f" — {expected}" if expected else "")
             + " (config/README.md documents every key)"),
    )


def _default_setting_validator():
    """A Draft-7 validator that fills in schema defaults, as Snakemake's ``validate`` does."""
    base = jsonschema.Draft7Validator
    set_props = base.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from set_props(validator, props, instance, schema)

    return jsonschema.validators.extend(base, {"properties": properties})


def fill_defaults(instance: Any, schema: dict) -> Any:
    """Return a copy of ``instance`` with the ``default`` of every missing schema key filled in.

    The same rule as Snakemake's ``validate(set_default=True)``, so it follows ``properties``,
    ``additionalProperties`` and ``$ref``, and a key whose default is a mapping is created and
    filled in turn. ``instance`` must be valid (it is validated on the way).
    """
    out = copy.deepcopy(instance)
    _default_setting_validator()(schema).validate(out)
    return out


def with_defaults(section: str, cfg: Mapping | None = None, schema_path=SCHEMA_PATH) -> dict:
    """Return the config ``section`` (``model``, ``training``, ...) with schema defaults filled in.

    Snakemake fills defaults for the workflow; this does the same for library callers and
    tests, from the same schema, so defaults are written down once.
    """
    schema = load_schema(schema_path)
    return fill_defaults(dict(cfg or {}), schema["properties"][section])
