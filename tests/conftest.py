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

    The venv's bin folder goes first on PATH so that rule scripts use the same Python. The
    run has umask 022, the common default, whatever the caller's: the tests that results are
    readable by group and others must not depend on who runs them.
    """
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += list(args)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir, umask=0o022)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Run the whole workflow once on tests/configs/tiny.yaml; return the working directory.

    tiny is a simulated genome with GATA1 and CTCF sites, two folds and two attribution
    shards: the fast run that exercises every rule (the SLURM test runs it too).
    """
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copy(CONFIGS / "tiny.yaml", workdir / "tiny.yaml")
    run_snakemake(workdir, "--cores", "2", configfile=workdir / "tiny.yaml")
    return workdir


def realistic_case(name: str, tmp_path_factory) -> tuple[Path, dict]:
    """Build a case of the recovery suite (bench/recovery_data.py): real C. elegans sequence
    from a Debian package, sites sampled from JASPAR matrices. Returns its folder and meta."""
    import yaml

    sys.path.insert(0, str(REPO / "bench"))
    import recovery_data

    root = tmp_path_factory.getbasetemp() / "recovery_cases"
    folder = recovery_data.build_case(recovery_data.BY_NAME[name], root, root / "cache")
    return folder, yaml.safe_load((folder / "case.yaml").read_text())


def run_as_a_user(name: str, tmp_path_factory) -> Path:
    """The workflow at default settings on a recovery case, with the config a new user would
    write (genome, peaks and the JASPAR taxon). Returns the working directory; the dataset is
    called ``name``."""
    import yaml

    sys.path.insert(0, str(REPO / "bench"))
    from recovery import user_config

    folder, meta = realistic_case(name, tmp_path_factory)
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "config.yaml").write_text(yaml.safe_dump(user_config(folder, meta, {})))
    run_snakemake(workdir, "--cores", "2", configfile=workdir / "config.yaml")
    return workdir


@pytest.fixture(scope="session")
def realistic_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """worm_ci_1200 at default settings: (working directory, case folder, case meta)."""
    workdir = run_as_a_user("worm_ci_1200", tmp_path_factory)
    folder, meta = realistic_case("worm_ci_1200", tmp_path_factory)
    return workdir, folder, meta


@pytest.fixture(scope="session")
def control_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The negative control at default settings: 1,000 random worm windows and 1,000
    matched negatives, nothing planted."""
    workdir = run_as_a_user("worm_ci_control_1000", tmp_path_factory)
    folder, meta = realistic_case("worm_ci_control_1000", tmp_path_factory)
    return workdir, folder, meta
