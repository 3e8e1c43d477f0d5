"""Rule adapters' error handling (peak2motif.utils.run_rule) and atomic outputs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import REPO


def _adapter(tmp_path, body: str) -> subprocess.CompletedProcess:
    """Run a stand-in rule script whose `snakemake` object only has a log."""
    script = tmp_path / "rule.py"
    script.write_text(textwrap.dedent(f"""\
        import types
        from peak2motif.errors import InputError
        from peak2motif.utils import run_rule
        snakemake = types.SimpleNamespace(log=[{str(tmp_path / "rule.log")!r}])
        with run_rule(snakemake):
        {textwrap.indent(textwrap.dedent(body), "    ")}
        """))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"})


def test_user_errors_are_one_paragraph_in_the_log_without_a_traceback(tmp_path):
    proc = _adapter(tmp_path, 'raise InputError("bad line", path="p.bed", line=3, fix="do x")')
    assert proc.returncode == 1
    assert "p.bed, line 3: bad line. Fix: do x" in proc.stderr
    assert "Traceback" not in proc.stderr
    log = (tmp_path / "rule.log").read_text()
    assert "p.bed, line 3: bad line. Fix: do x" in log and "Traceback" not in log


def test_other_errors_reach_the_log_with_their_traceback(tmp_path):
    proc = _adapter(tmp_path, "1 / 0")
    assert proc.returncode != 0
    log = (tmp_path / "rule.log").read_text()
    assert "unexpected error" in log and "Traceback" in log and "ZeroDivisionError" in log


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    from peak2motif.utils import atomic_output

    with pytest.raises(RuntimeError), atomic_output(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(tmp_path / "out.txt") as tmp:
        tmp.write_text("whole")
    assert (tmp_path / "out.txt").read_text() == "whole"
