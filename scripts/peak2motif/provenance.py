"""Provenance of a run: the resolved config of a dataset and the software it ran with.

Written to ``results/NAME/provenance/``:

- ``config.yaml``: the config that produced NAME, narrowed to that dataset (and the demo data
  it is simulated from, if any), with every schema default filled in, so the file alone
  reproduces the run (``snakemake --configfile results/NAME/provenance/config.yaml``);
- ``versions.tsv``: columns ``category``, ``name``, ``version``; categories ``workflow``
  (peak2motif's version and git commit), ``python``,
  ``platform``, ``tensorflow`` (version, CUDA build, cuDNN), ``gpu`` (devices TensorFlow sees
  and ``nvidia-smi``'s name and driver, or ``none``), ``tool`` (bedtools) and ``package`` (every
  installed Python distribution of the environment the rule ran in);
- ``provenance.html``: both, as one page for the report.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from peak2motif.config import fill_defaults
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

NOT_FOUND = "not found"
COLUMNS = ["category", "name", "version"]


def dataset_config(config: dict, dataset: str, schema: dict) -> dict:
    """The config that produces ``dataset`` alone, with all defaults filled in.

    ``datasets`` keeps only ``dataset``; its own section overrides are merged into the
    top-level sections (so the file shows the settings the dataset ran with); ``simulate``
    keeps only the simulations whose files it reads (``resources/SIM/...``).
    """
    from peak2motif.config import SECTIONS, dataset_settings

    if dataset not in config.get("datasets", {}):
        raise KeyError(f"dataset {dataset!r} is not in the config")
    narrowed = {k: v for k, v in config.items() if k not in ("datasets", "simulate")}
    narrowed.update(dataset_settings(config, dataset, schema))
    ds = {k: v for k, v in config["datasets"][dataset].items() if k not in SECTIONS}
    narrowed["datasets"] = {dataset: ds}
    peaks = ds["peaks"] if isinstance(ds["peaks"], dict) else {"peaks": ds["peaks"]}
    paths = [ds["genome"], *peaks.values()]
    used = {
        sim: cfg
        for sim, cfg in (config.get("simulate") or {}).items()
        if any(str(p).startswith(f"resources/{sim}/") for p in paths)
    }
    narrowed["simulate"] = used
    return fill_defaults(narrowed, schema)


def _run(cmd: list[str]) -> str | None:
    """stdout of ``cmd``, or None when it is missing or fails (provenance must not fail)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    except (subprocess.SubprocessError, OSError):
        return None
    return proc.stdout.strip()


def tool_version(executable: str, flag: str = "--version") -> str:
    """Version printed by a command-line tool (e.g. ``bedtools --version`` -> ``2.30.0``)."""
    out = _run([executable, flag])
    if not out:
        return NOT_FOUND
    m = re.search(r"v?(\d+(?:\.\d+)+)", out)
    return m.group(1) if m else out.splitlines()[0]


def python_packages() -> list[tuple[str, str]]:
    """(name, version) of every installed distribution, sorted by lower-case name."""
    seen = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = (name, dist.version)
    return sorted(seen.values(), key=lambda nv: nv[0].lower())


def tensorflow_versions() -> list[tuple[str, str]]:
    """TensorFlow's version, whether it is a CUDA build, its CUDA and cuDNN versions, and the
    GPUs it can see. TensorFlow is imported here, not at module level (2-3 s)."""
    try:
        import tensorflow as tf
    except ImportError:
        return [("tensorflow", NOT_FOUND)]
    build = dict(tf.sysconfig.get_build_info())
    gpus = tf.config.list_physical_devices("GPU")
    return [
        ("tensorflow", tf.__version__),
        ("is_cuda_build", str(bool(build.get("is_cuda_build", False)))),
        ("cuda_version", str(build.get("cuda_version") or "none")),
        ("cudnn_version", str(build.get("cudnn_version") or "none")),
        ("visible_gpus", str(len(gpus))),
    ]


def nvidia_gpus() -> list[tuple[str, str]]:
    """Name, driver and memory of each GPU that ``nvidia-smi`` lists; ``none`` without one."""
    out = _run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    )
    if not out:
        return [("gpu", "none")]
    return [(f"gpu{i}", line.strip()) for i, line in enumerate(out.splitlines())]


def workflow_version() -> list[tuple[str, str]]:
    """peak2motif's version and, when it runs from a git checkout, the commit."""
    from peak2motif import __version__

    rows = [("peak2motif", __version__)]
    here = Path(__file__).resolve().parent
    commit = _run(["git", "-C", str(here), "rev-parse", "HEAD"])
    if commit:
        dirty = _run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"])
        rows.append(("git_commit", commit + (" (modified)" if dirty else "")))
    return rows


def collect_versions(with_tensorflow: bool = True) -> pd.DataFrame:
    """The software of the running environment as a table (columns category, name, version)."""
    rows = [("workflow", n, v) for n, v in workflow_version()]
    rows += [
        ("python", "python", platform.python_version()),
        ("python", "executable", sys.executable),
        ("platform", "system", platform.platform()),
        ("platform", "machine", platform.machine()),
        ("platform", "processor_count", str(_cpu_count())),
    ]
    if with_tensorflow:
        rows += [("tensorflow", n, v) for n, v in tensorflow_versions()]
    rows += [("gpu", n, v) for n, v in nvidia_gpus()]
    rows.append(("tool", "bedtools", tool_version("bedtools")))
    rows += [("package", n, v) for n, v in python_packages()]
    return pd.DataFrame(rows, columns=COLUMNS)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def render_html(config: dict, versions: pd.DataFrame, dataset: str) -> str:
    """One HTML page with the resolved config and the versions table (for the report)."""
    from peak2motif.presentation import render, table

    main = versions[versions["category"] != "package"]
    packages = versions[versions["category"] == "package"]
    return render("provenance.html", title=f"Provenance of {dataset}", dataset=dataset,
                  software=table(main), config=yaml.safe_dump(config, sort_keys=False),
                  n_packages=len(packages), packages=table(packages[["name", "version"]]))


def record_provenance(
    config: dict,
    dataset: str,
    config_out: str | Path,
    versions_out: str | Path,
    html_out: str | Path,
    with_tensorflow: bool = True,
) -> pd.DataFrame:
    """Write the resolved config of ``dataset`` (from :func:`dataset_config`), the versions
    table of the running environment and an HTML page of both. Returns the versions table."""
    versions = collect_versions(with_tensorflow=with_tensorflow)
    with atomic_output(config_out) as tmp:
        tmp.write_text(
            f"# Resolved config of dataset '{dataset}' (schema defaults filled in).\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
    with atomic_output(versions_out) as tmp:
        versions.to_csv(tmp, sep="\t", index=False)
    with atomic_output(html_out) as tmp:
        tmp.write_text(render_html(config, versions, dataset))
    shown = ["workflow", "python", "tensorflow", "gpu", "tool"]
    summary = versions[versions["category"].isin(shown)]
    for row in summary.itertuples():
        log.info("%s %s: %s", row.category, row.name, row.version)
    return versions
