"""Config checking with messages that name the key and the fix.

Snakemake's own ``validate()`` fills in the schema defaults, but its error message is a dump
of the whole schema. ``check_config`` runs first and turns the most relevant JSON Schema error
into one sentence: which key, what was expected, and how to fix it.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Mapping, Sequence
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


MAX_ERRORS = 10


def _describe(error, root: dict) -> list[tuple[list, str, str]]:
    """One schema error as (key path, problem, fix) entries: one per unknown key."""
    # oneOf/anyOf errors are vague; the deepest sub-error usually names the real problem.
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(error.schema, root)
        out = []
        for bad in [k for k in error.instance if k not in allowed] or ["?"]:
            close = difflib.get_close_matches(str(bad), allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            if len(path) == 2 and path[0] == "datasets" and bad in root.get("properties", {}):
                hint = (f"'{bad}' is a top-level section only (a dataset can override "
                        f"{', '.join(OVERRIDABLE)}): move it to the top level, or ")
            out.append((path + [bad], f"unknown key '{bad}'",
                        f"{hint}remove it or use one of: {', '.join(allowed) or '(none)'} "
                        "(config/README.md documents every key)"))
        return out
    if error.validator == "required":
        return [(path, error.message,
                 "add the missing key (config/README.md documents every key)")]
    expected = error.schema.get("description", "")
    return [(path, error.message,
             f"expected {error.validator} {error.validator_value!r}"
             + (f" — {expected}" if expected else "")
             + " (config/README.md documents every key)")]


def _errors(instance: dict, schema: dict, root: dict) -> list[tuple[list, str, str]]:
    """Every violation of ``schema`` by ``instance``, in key order."""
    errors = jsonschema.Draft202012Validator(schema).iter_errors(instance)
    out = [item for error in errors for item in _describe(error, root)]
    return sorted(out, key=lambda e: [str(p) for p in e[0]])


def _section_schema(root: dict, section: str) -> dict:
    """The schema of ``{section: ...}`` alone, with the root's definitions so $ref resolves."""
    return dict(root, required=[], properties={section: root["properties"][section]})


def _section_errors(config: Mapping, name: str, section: str, root: dict):
    """The errors of one dataset's ``section`` merged over the top-level one, as
    (key path, problem, fix, overridden): ``overridden`` says whether the dataset sets it."""
    ds = config["datasets"][name]
    own = ds.get(section)
    if section == "variants":
        own = {k: v for k, v in own.items() if k != "vcf"} if isinstance(own, Mapping) else None
    top = config.get(section) or {}
    if not isinstance(top, Mapping) or not isinstance(own or {}, Mapping):
        return []  # a wrong type at either level is the schema check's error
    merged = deep_merge(top, own or {})
    return [(path, problem, fix, own is not None) for path, problem, fix
            in _errors({section: merged}, _section_schema(root, section), root)]


def _raise(errors: list[tuple[str, str, str]]) -> None:
    """One InputError: a single error as one sentence, several as one line each."""
    if not errors:
        return
    if len(errors) == 1:
        key, problem, fix = errors[0]
        raise InputError(problem, key=key, fix=fix)
    lines = [str(InputError(problem, key=key, fix=fix)) for key, problem, fix in errors]
    more = len(lines) - MAX_ERRORS
    shown = lines[:MAX_ERRORS] + ([f"and {more} more"] if more > 0 else [])
    err = InputError(f"{len(lines)} errors in the config:\n" + "\n".join(
        f"  {i}. {line}" if not line.startswith("and ") else f"  {line}"
        for i, line in enumerate(shown, 1)))
    err.errors = lines
    raise err


def config_errors(config: dict, schema: dict) -> list[tuple[str, str, str]]:
    """Every error of ``config`` as (key, problem, fix): the schema's, then those of each
    dataset's section overrides merged over the top-level sections (an error already
    reported for the top-level key is not repeated for each dataset)."""
    found = [(_key(path), problem, fix) for path, problem, fix in _errors(config, schema, schema)]
    seen = set(found)
    datasets = config.get("datasets")
    if not isinstance(datasets, Mapping):
        return found
    for name, ds in datasets.items():
        if not isinstance(ds, Mapping):
            continue
        for section in OVERRIDABLE:
            if ds.get(section) is None:
                continue
            for path, problem, fix, _ in _section_errors(config, name, section, schema):
                if (_key(path), problem, fix) in seen:
                    continue
                item = (f"datasets: {name}: {_key(path)}", problem, fix)
                if item not in seen:
                    seen.add(item)
                    found.append(item)
    return found


def check_config(config: dict, schema_path: str | Path | dict) -> None:
    """Raise one :class:`InputError` listing every error of ``config`` (given the schema as
    its path, or already read): one line each, naming the key and the fix, at most
    :data:`MAX_ERRORS` lines, then how many more. A dataset's section overrides are checked
    merged over the top-level section, and named ``datasets: NAME: section: key``."""
    schema = schema_path if isinstance(schema_path, dict) else load_schema(schema_path)
    _raise(config_errors(config, schema))


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
# Sections a dataset entry may override. `variants` is one too, but in a dataset entry it is
# also where the VCF is named: `variants: calls.vcf`, or `variants: {vcf: calls.vcf,
# max_distance: 500}` to override keys of the top-level section. `sweep` is top-level only:
# its grid makes the training jobs (one wildcard of the DAG shared by every dataset).
OVERRIDABLE = (*SECTIONS, "variants")


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``base`` with ``over`` merged in: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dataset_vcf(entry: Mapping) -> str | None:
    """The VCF of one ``datasets: NAME`` entry (``variants: PATH`` or ``variants: {vcf: PATH,
    ...}``), or None when it has none."""
    value = entry.get("variants")
    return value.get("vcf") if isinstance(value, Mapping) else value


def dataset_settings(config: Mapping, name: str, schema: dict) -> dict:
    """The sections of one dataset: the top-level ones with the dataset's overrides merged in.

    A dataset entry may hold any of :data:`OVERRIDABLE` (``datasets: fly: motifs:
    {jaspar_tax_group: [insects]}``); the merged section is checked against the same schema
    as the top-level one, and every error is reported at once, naming the dataset's key
    (``datasets: fly: motifs: ...``) where the dataset sets the section. Missing keys take
    the schema defaults.
    """
    ds = config["datasets"][name]
    errors = []
    for section in OVERRIDABLE:
        for path, problem, fix, overridden in _section_errors(config, name, section, schema):
            prefix = f"datasets: {name}: " if overridden else ""
            errors.append((prefix + _key(path), problem, fix))
    _raise(errors)
    out = {}
    for section in OVERRIDABLE:
        own = ds.get(section)
        if section == "variants":
            own = {k: v for k, v in own.items() if k != "vcf"} if isinstance(own, Mapping) else {}
        merged = deep_merge(config.get(section) or {}, own or {})
        out[section] = fill_defaults({section: merged}, _section_schema(schema, section))[section]
    return out


# --- the key tables of config/README.md, made from the schema -------------------------------

README_MARKER = "<!-- keys: {section} (made from config.schema.yaml by `python -m peak2motif.config"


def _default_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "`" + yaml.safe_dump(value, default_flow_style=True, width=1000).strip() + "`"
    return f"`{yaml.safe_dump(value).strip().removesuffix('...').strip()}`"


def _key_rows(props: Mapping, prefix: str = "",
              required: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """Rows of a key table. A key without a default is "required" only when the schema lists
    it in ``required``; the others are optional (a dataset's own sections, for example)."""
    rows = []
    for key, sub in props.items():
        name = prefix + key
        if sub.get("type") == "object" and "properties" in sub and sub["properties"]:
            rows += _key_rows(sub["properties"], f"{name}.", sub.get("required", ()))
            continue
        desc = " ".join(str(sub.get("description", "")).split())
        if "enum" in sub:
            desc += " One of: " + ", ".join(f"`{v}`" for v in sub["enum"]) + "."
        default = (_default_text(sub["default"]) if "default" in sub
                   else "required" if key in required else "optional")
        rows.append((name, default, desc.replace("|", "\\|")))
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
    lines += [f"| `{k}` | {d} | {m} |"
              for k, d, m in _key_rows(node["properties"], required=node.get("required", ()))]
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
