"""profiles/slurm: every key commented, GPU rules on the GPU partition, accepted by Snakemake.

The real cluster run is tests/test_slurm.py (marker `slurm`); these checks are fast and need
no SLURM.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from test_envs import rule_blocks

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "profile.yaml"
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_-]+):")


def gpu_rules_in_workflow() -> set[str]:
    """Rules whose resources declare a GPU (`gpu=1`)."""
    found = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for name, body in rule_blocks(smk.read_text()).items():
            if re.search(r"^\s+gpu\s*=\s*[1-9]", body, re.M):
                found.add(name)
    return found


def all_rules_in_workflow() -> set[str]:
    names = set()
    for smk in (REPO / "rules").glob("*.smk"):
        names |= set(rule_blocks(smk.read_text()))
    return names


def test_every_key_is_commented():
    lines = PROFILE.read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        m = KEY_LINE.match(line)
        if not m:
            continue
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            uncommented.append(m["key"])
    assert not uncommented, f"keys without a comment in {PROFILE.name}: {uncommented}"


def test_profile_targets_slurm_with_cpu_default_partition():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["default-resources"]["slurm_partition"] == "cpu"
    assert profile["retries"] >= 1 and profile["latency-wait"] > 0
    assert profile["rerun-incomplete"] is True
    assert profile["slurm-logdir"]
    # A profile in profiles/default/ would be loaded by every plain `snakemake` call.
    assert not (REPO / "profiles" / "default").exists()


def test_gpu_rules_go_to_the_gpu_partition_and_others_do_not():
    profile = yaml.safe_load(PROFILE.read_text())
    on_gpu = {
        rule
        for rule, res in profile["set-resources"].items()
        if res.get("slurm_partition") == "gpu"
    }
    declared = gpu_rules_in_workflow()
    assert {"train_model", "compute_contributions"} <= declared, declared
    assert declared == on_gpu, f"rules with gpu=1: {declared}; on the gpu partition: {on_gpu}"
    unknown = set(profile["set-resources"]) - all_rules_in_workflow()
    assert not unknown, f"set-resources names rules that do not exist: {unknown}"


def test_snakemake_accepts_the_profile(tmp_path):
    """A dry run through the profile (less conda, absent here) resolves every job's partition."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile.pop("software-deployment-method")
    (tmp_path / "prof").mkdir()
    (tmp_path / "prof" / "profile.yaml").write_text(yaml.safe_dump(profile))
    shutil.copy(REPO / "tests" / "configs" / "tiny.yaml", tmp_path / "tiny.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--profile", str(tmp_path / "prof"),
         "--configfile", str(tmp_path / "tiny.yaml"), "--dry-run"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: .*?slurm_partition=(\w+)",
                      proc.stdout, re.M)
    partitions = dict(jobs)
    assert partitions.get("train_model") == "gpu", partitions
    assert partitions.get("compute_contributions") == "gpu", partitions
    assert partitions.get("extract_sequences") == "cpu", partitions
