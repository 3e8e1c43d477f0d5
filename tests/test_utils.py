"""Rule adapters' error handling (peak2motif.utils.run_rule) and atomic outputs."""

from __future__ import annotations

import os
import stat
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


@pytest.fixture(params=[0o022, 0o077, 0o027])
def umask(request):
    """Run the test under this umask, and restore the caller's afterwards."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_output_gives_the_mode_a_plain_open_gives(tmp_path, umask):
    from peak2motif.utils import atomic_output

    with open(tmp_path / "plain.txt", "w") as fh:
        fh.write("x")
    with atomic_output(tmp_path / "atomic.txt") as tmp:
        tmp.write_text("x")
    assert _mode(tmp_path / "atomic.txt") == _mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_writer_of_results_respects_the_umask(tmp_path, umask):
    """The writers the stages use, inside atomic_output and directly, give 0o666 & ~umask."""
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import pyBigWig
    from peak2motif.utils import atomic_output

    frame = pd.DataFrame({"a": [1, 2]})
    fig = plt.figure()
    written = []
    for name, write in {
        "to_csv": lambda p: frame.to_csv(p, sep="\t"),
        "h5": lambda p: h5py.File(p, "w").close(),
        "png": lambda p: fig.savefig(p, format="png"),
    }.items():
        with atomic_output(tmp_path / f"atomic_{name}") as tmp:
            write(tmp)
        write(tmp_path / f"direct_{name}")
        written += [f"atomic_{name}", f"direct_{name}"]
    plt.close(fig)
    with atomic_output(tmp_path / "atomic.bw") as tmp:
        bw = pyBigWig.open(str(tmp), "w")
        bw.addHeader([("chr1", 100)])
        bw.addEntries(["chr1"], [0], ends=[10], values=[1.0])
        bw.close()
    written.append("atomic.bw")
    modes = {name: oct(_mode(tmp_path / name)) for name in written}
    assert modes == {name: oct(0o666 & ~umask) for name in written}


@pytest.mark.slow
def test_results_of_a_run_under_umask_022_are_readable_by_group_and_others(tiny_run):
    """On a shared cluster, lab mates read motifs.tsv, regions.tsv, contributions.bw...
    run_snakemake runs the workflow under umask 022, so every file must be 0644 (or more)."""
    files = [p for p in (tiny_run / "results").rglob("*") if p.is_file()]
    folders = [p for p in (tiny_run / "results").rglob("*") if p.is_dir()]
    assert len(files) > 30
    unreadable = [f"{p.relative_to(tiny_run)} {oct(_mode(p))}" for p in files
                  if _mode(p) & 0o044 != 0o044]
    closed = [f"{p.relative_to(tiny_run)} {oct(_mode(p))}" for p in folders
              if _mode(p) & 0o055 != 0o055]
    assert not unreadable and not closed, (unreadable, closed)
