"""Config checking with messages that name the key and the fix.

Snakemake's own ``validate()`` fills in the schema defaults, but its error message is a dump
of the whole schema. ``check_config`` runs first and turns the most relevant JSON Schema error
into one sentence: which key, what was expected, and how to fix it.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from peak2motif.errors import InputError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "config.schema.yaml"


@functools.lru_cache(maxsize=4)
def _read_schema(path: str) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def load_schema(path: str | Path) -> dict:
    """The config schema (read once per process; each caller gets its own copy)."""
    return copy.deepcopy(_read_schema(str(Path(path).resolve())))


def _key(path) -> str:
    return ": ".join(str(p) for p in path) or "(top level)"


def _allowed_keys(schema: dict, root: dict) -> list[str]:
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return sorted(schema.get("properties", {}))


def check_config(config: dict, schema_path: str | Path | dict) -> None:
    """Raise :class:`InputError` naming the offending key if ``config`` breaks the schema
    (given as its path, or already read)."""
    schema = schema_path if isinstance(schema_path, dict) else load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
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
    """A Draft 2020-12 validator (Snakemake's draft) that fills in defaults as ``validate`` does."""
    base = jsonschema.Draft202012Validator
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


def simulation_defaults(cfg: Mapping | None = None, schema_path=SCHEMA_PATH) -> dict:
    """One ``simulate: NAME`` entry with the schema defaults filled in."""
    schema = load_schema(schema_path)
    return fill_defaults(dict(cfg or {}), schema["properties"]["simulate"]["additionalProperties"])


SECTIONS = ("data", "model", "training", "attribution", "motifs")


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``base`` with ``over`` merged in: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dataset_settings(config: Mapping, name: str, schema: dict) -> dict:
    """The sections of one dataset: the top-level ones with the dataset's overrides merged in.

    A dataset entry may hold any of :data:`SECTIONS` (``datasets: fly: motifs:
    {jaspar_tax_group: [insects]}``); the merged section is checked against the same schema
    as the top-level one, and an error names the dataset's key
    (``datasets: fly: motifs: ...``). Missing keys take the schema defaults.
    """
    ds = config["datasets"][name]
    out = {}
    for section in SECTIONS:
        merged = deep_merge(config.get(section) or {}, ds.get(section) or {})
        sub = schema["properties"][section]
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(sub).iter_errors(merged))
        if error is not None:
            try:
                check_config({"datasets": config["datasets"], section: merged}, schema)
            except InputError as err:
                prefix = f"datasets: {name}: " if section in ds else ""
                raise InputError(str(err).replace("config key '", f"config key '{prefix}", 1)
                                 ) from None
        out[section] = fill_defaults(merged, sub)
    return out


# --- the key tables of config/README.md, made from the schema -------------------------------

README_MARKER = "<!-- keys: {section} (made from config.schema.yaml by `python -m peak2motif.config"


def _default_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "`" + yaml.safe_dump(value, default_flow_style=True, width=1000).strip() + "`"
    return f"`{yaml.safe_dump(value).strip().removesuffix('...').strip()}`"


def _key_rows(props: Mapping, prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    for key, sub in props.items():
        name = prefix + key
        if sub.get("type") == "object" and "properties" in sub and sub["properties"]:
            rows += _key_rows(sub["properties"], f"{name}.")
            continue
        desc = " ".join(str(sub.get("description", "")).split())
        if "enum" in sub:
            desc += " One of: " + ", ".join(f"`{v}`" for v in sub["enum"]) + "."
        rows.append((name, _default_text(sub["default"]) if "default" in sub else "required",
                     desc.replace("|", "\\|")))
    return rows


def key_table(section: str, schema: dict | None = None) -> str:
    """The markdown table of one config section's keys: key, default, meaning."""
    schema = schema or load_schema(SCHEMA_PATH)
    if section == "datasets":
        node = schema["definitions"]["dataset"]
    elif section == "simulate":
        node = schema["properties"]["simulate"]["additionalProperties"]
    else:
        node = schema["properties"][section]
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{k}` | {d} | {m} |" for k, d, m in _key_rows(node["properties"])]
    return "\n".join(lines)


def update_readme(path: str | Path) -> str:
    """Rewrite every generated key table of ``path`` (between a keys marker and
    ``<!-- /keys -->``) from the schema; return the new text."""
    import re

    text = Path(path).read_text()
    pattern = re.compile(r"(<!-- keys: (\w+) .*?-->\n)(.*?)(<!-- /keys -->)", re.S)
    return pattern.sub(lambda m: m[1] + key_table(m[2]) + "\n" + m[4], text)


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else SCHEMA_PATH.parent / "README.md")
    target.write_text(update_readme(target))
