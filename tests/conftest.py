"""Shared fixtures: running the workflow on the tiny config once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "tests" / "configs"


def run_snakemake(
    workdir: Path, *args: str, configfile: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the workflow's Snakefile with ``workdir`` as working directory.

    The venv's bin folder goes first on PATH so that rule scripts use the same Python.
    """
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += list(args)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Run the whole workflow once on tests/configs/tiny.yaml; return the working directory.

    Stage tests assert on what it wrote under ``results/tiny`` (and ``resources/tiny``).
    """
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copy(CONFIGS / "tiny.yaml", workdir / "tiny.yaml")
    run_snakemake(workdir, "--cores", "2", configfile=workdir / "tiny.yaml")
    return workdir


@pytest.fixture(scope="session")
def control_run(tmp_path_factory) -> Path:
    """The negative control: tiny.yaml's settings on a simulation with no planted motif.

    Return the working directory; results are under ``results/control``.
    """
    import yaml

    workdir = tmp_path_factory.mktemp("control")
    config = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    config["datasets"] = {"control": {"genome": "resources/control/genome.fa",
                                      "peaks": "resources/control/peaks.narrowPeak"}}
    config["simulate"] = {"control": {"seed": 4, "n_chromosomes": 3,
                                      "chromosome_length": 1_000_000, "n_peaks": 600,
                                      "motifs": []}}
    (workdir / "control.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run_snakemake(workdir, "--cores", "2", "results/control/motifs/motifs.html",
                  configfile=workdir / "control.yaml")
    return workdir
