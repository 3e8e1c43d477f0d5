"""The workflow on a real SLURM: a private single-node cluster on 127.0.0.1 (tests/slurm/).

The module installs Debian's Slurm and munge when they are missing (root, about 20 s), starts
munged, slurmctld and slurmd with a `cpu` (default) and a `gpu` partition whose node has one
fake GPU, runs the tiny workflow through a test copy of profiles/slurm, and stops every daemon
it started by PID. The copy differs from the real profile only where this cluster needs it:
no conda (no channel is reachable), squeue for job status (no accounting database), short
polling and few parallel jobs (2 cores).

Which partition and GPU each job got is read back from slurmctld (`scontrol -d show job`,
which keeps finished jobs for MinJobAge = 1 h on this cluster).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SLURM = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm" / "profile.yaml"
DAEMONS = ("munged", "slurmctld", "slurmd")

WORKFLOW_TIMEOUT_S = 45 * 60
FAILURE_TIMEOUT_S = 5 * 60

# What the test cluster needs that a real one does not (see the module docstring).
TEST_OVERRIDES = {
    "jobs": 2,
    "latency-wait": 5,
    "slurm-status-command": "squeue",
    "slurm-init-seconds-before-status-checks": 2,
}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running single-node SLURM; yields its state folder; stops it afterwards."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("the SLURM test installs and starts daemons: it needs root on Linux")
    subprocess.run(["bash", str(SLURM / "install.sh")], check=True, timeout=900)
    state = tmp_path_factory.mktemp("slurm")
    had_config = Path("/etc/slurm/slurm.conf").exists()
    try:
        subprocess.run(["bash", str(SLURM / "start.sh"), str(state)], check=True, timeout=180)
        yield state
    finally:
        pids = [
            int((state / "run" / f"{d}.pid").read_text())
            for d in DAEMONS
            if (state / "run" / f"{d}.pid").is_file()
        ]
        subprocess.run(["bash", str(SLURM / "stop.sh"), str(state)], timeout=180)
        still = [p for p in pids if _alive(p)]
        assert not still, f"daemons still running after stop.sh: {still}"
        assert Path("/etc/slurm/slurm.conf").exists() == had_config, "/etc/slurm not restored"


def write_test_profile(folder: Path) -> Path:
    """A copy of profiles/slurm/profile.yaml with TEST_OVERRIDES and without conda."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile.pop("software-deployment-method", None)
    profile.update(TEST_OVERRIDES)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def run_bounded(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; on timeout kill the group and fail the test."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s (hung?):\n{out[-6000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def snakemake_cmd(snakefile: Path, workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile),
            "--directory", str(workdir), *args]


def slurm_jobs(workdir: Path) -> list[dict[str, str]]:
    """Every job slurmctld knows that was submitted from ``workdir``, as key -> value."""
    out = subprocess.run(
        ["scontrol", "-d", "-o", "show", "job"], capture_output=True, text=True, check=True
    ).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        if Path(fields.get("WorkDir", "/nonexistent")) == workdir:
            m = re.match(r"rule_(\w+?)(_wildcards_.*)?$", fields.get("Comment", ""))
            fields["rule"] = m.group(1) if m else "?"
            jobs.append(fields)
    return jobs


def planned_jobs(workdir: Path, configfile: Path) -> dict[str, int]:
    """Rule -> number of jobs of a dry run (Snakemake's job stats table)."""
    proc = run_bounded(
        snakemake_cmd(REPO / "Snakefile", workdir, "--dry-run", "--configfile", str(configfile)),
        workdir, 300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    table = proc.stdout.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line)
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
        elif line.startswith("total"):
            break
    return counts


def gpu_rules() -> set[str]:
    profile = yaml.safe_load(PROFILE.read_text())
    return {
        rule
        for rule, res in profile.get("set-resources", {}).items()
        if res.get("slurm_partition") == "gpu"
    }


def test_cluster_has_cpu_and_gpu_partitions(slurm_cluster):
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%P %G %t"], capture_output=True, text=True, check=True
    ).stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert set(rows) == {"cpu*", "gpu"}
    assert all(state == "idle" for _, state in rows.values()), rows
    assert rows["gpu"][0].startswith("gpu:1")


def test_tiny_workflow_runs_on_slurm_with_gpu_rules_on_gpu_partition(slurm_cluster, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = workdir / "tiny.yaml"
    config.write_text((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    plan = planned_jobs(workdir, config)
    profile = write_test_profile(tmp_path / "profile")

    proc = run_bounded(
        snakemake_cmd(REPO / "Snakefile", workdir, "--profile", str(profile),
                      "--configfile", str(config)),
        workdir, WORKFLOW_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout[-8000:]

    jobs = slurm_jobs(workdir)
    ran: dict[str, int] = {}
    for job in jobs:
        ran[job["rule"]] = ran.get(job["rule"], 0) + 1
    # Every job of the plan ran as its own SLURM job, once, and completed (no retry needed).
    assert ran == {r: n for r, n in plan.items() if r != "all"}, (ran, plan)
    assert all(j["JobState"] == "COMPLETED" for j in jobs), [
        (j["JobId"], j["rule"], j["JobState"]) for j in jobs if j["JobState"] != "COMPLETED"
    ]

    on_gpu = gpu_rules()
    # tiny has two folds and two attribution shards: each is its own (GPU) job
    assert ran["train_model"] == 2 and ran["compute_contributions"] == 4, ran
    assert ran["crosscheck_contributions"] == 2 and ran["gather_contributions"] == 1, ran
    for job in jobs:
        where = (job["JobId"], job["rule"], job["Partition"], job.get("JOB_GRES"))
        if job["rule"] in on_gpu:
            assert job["Partition"] == "gpu", where
            assert job.get("JOB_GRES", "").startswith("gpu:1"), where
            assert job.get("TresPerJob") == "gres:gpu:1", where
        else:
            assert job["Partition"] == "cpu", where
            assert job.get("JOB_GRES") in (None, "", "(null)"), where

    # The plugin's per-job SLURM logs land in the profile's log folder.
    slurm_logs = list((workdir / "logs" / "slurm").rglob("*.log"))
    assert len(slurm_logs) == len(jobs)
    assert (workdir / "results" / "tiny" / "motifs" / "motifs.tsv").is_file()
    versions = (workdir / "results" / "tiny" / "provenance" / "versions.tsv").read_text()
    assert "tensorflow\ttensorflow\t" in versions
    # the GPU jobs log the device they ran on (provenance itself runs on the CPU partition)
    assert "training device:" in (workdir / "logs/tiny/train_model/0.log").read_text()


def test_failing_job_is_reported_failed_and_does_not_hang(slurm_cluster, tmp_path):
    workdir = tmp_path / "fail"
    workdir.mkdir()
    profile = write_test_profile(tmp_path / "profile")
    retries = yaml.safe_load(PROFILE.read_text())["retries"]

    proc = run_bounded(
        snakemake_cmd(SLURM / "failing.smk", workdir, "--profile", str(profile)),
        workdir, FAILURE_TIMEOUT_S,
    )
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert "Error in rule fail_on_purpose" in proc.stdout, proc.stdout[-4000:]
    jobs = slurm_jobs(workdir)
    # The profile's retries: the job is submitted 1 + retries times, each attempt FAILED.
    assert len(jobs) == 1 + retries, jobs
    for job in jobs:
        assert job["rule"] == "fail_on_purpose"
        assert job["JobState"] == "FAILED" and job["ExitCode"] != "0:0", job
        assert job["Partition"] == "cpu"
        assert f"SLURM-job '{job['JobId']}' failed" in proc.stdout
    assert not (workdir / "never.txt").exists()
