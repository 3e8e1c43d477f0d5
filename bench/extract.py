"""Benchmark of sequence extraction (a benchmark, not a test).

Workload: about 100k windows of 1 kb from a synthetic genome of about 100 Mb, written as the
split file of the data contract (uint8 codes, chunked HDF5).

- ours: ``peak2motif.extract.extract_sequences`` (pyfaidx reads, lookup-table encoding,
  chunked writes);
- baseline, in the same run: ``bedtools getfasta -tab`` piped into a plain Python encoder
  that maps each character through a dict, writing the same HDF5 in the same chunks.

Each runs in its own subprocess; wall time and peak memory (``ru_maxrss`` from ``wait4``,
which covers the process and the children it waited for) are measured per run. Then ours runs
on a 10 Mb and a 1 Gb genome with the same number of windows, to show that memory does not
grow with genome size.

Usage: ``.venv/bin/python bench/extract.py [--regions 100000] [--width 1000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
LINE = 60


def write_genome(path: Path, n_chroms: int, chrom_len: int, seed: int = 0) -> None:
    """Random FASTA (60-bp lines) and its .fai, written chromosome by chromosome."""
    rng = np.random.default_rng(seed)
    acgt = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
    offset = 0
    with open(path, "wb") as fa, open(f"{path}.fai", "w") as fai:
        for i in range(n_chroms):
            name = f"chr{i + 1}"
            head = f">{name}\n".encode()
            fa.write(head)
            offset += len(head)
            full, rest = divmod(chrom_len, LINE)
            body = np.empty((full, LINE + 1), dtype=np.uint8)
            body[:, :LINE] = acgt[rng.integers(0, 8, size=(full, LINE), dtype=np.uint8)]
            body[:, LINE] = ord("\n")
            fa.write(body.tobytes())
            size = body.size
            if rest:
                tail = acgt[rng.integers(0, 8, size=rest, dtype=np.uint8)].tobytes() + b"\n"
                fa.write(tail)
                size += len(tail)
            fai.write(f"{name}\t{chrom_len}\t{offset}\t{LINE}\t{LINE + 1}\n")
            offset += size


def write_regions(path: Path, bed: Path, n: int, width: int, n_chroms: int, chrom_len: int,
                  seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    chrom = rng.integers(1, n_chroms + 1, size=n)
    start = rng.integers(0, chrom_len - width, size=n)
    df = pd.DataFrame({"chrom": [f"chr{c}" for c in chrom], "start": start,
                       "end": start + width}).sort_values(["chrom", "start"])
    df["name"] = [f"r{i}" for i in range(n)]
    df["split"] = "train"
    df["peaks"] = 1.0
    df.to_csv(path, sep="\t", index=False)
    df[["chrom", "start", "end"]].to_csv(bed, sep="\t", index=False, header=False)


OURS = textwrap.dedent("""
    import sys
    sys.path.insert(0, {scripts!r})
    from peak2motif.extract import extract_sequences
    extract_sequences({genome!r}, {regions!r}, {{"train": {out!r}}}, "binary", chunk_size=4096)
""")

BASELINE = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {scripts!r})
    from peak2motif.sequences import create_split, append_split
    code = {{"A": 0, "C": 1, "G": 2, "T": 3, "a": 0, "c": 1, "g": 2, "t": 3}}
    h5 = create_split({out!r}, {width}, ["peaks"], "binary", chunk_rows=1024)
    rows, n = [], 0
    def flush():
        global rows, n
        if rows:
            append_split(h5, np.array(rows, dtype=np.uint8), np.ones((len(rows), 1), np.float32),
                         np.arange(n, n + len(rows)))
            n += len(rows)
            rows = []
    for line in sys.stdin:
        seq = line.rstrip("\\n").split("\\t")[1]
        rows.append([code.get(ch, 4) for ch in seq])
        if len(rows) == 4096:
            flush()
    flush()
    h5.close()
""")


# A small launcher process runs each measured command: ru_maxrss survives exec, so a command
# forked straight from this (large) process would report this process's memory as its own.
LAUNCHER = (
    "import os, subprocess, sys, time\n"
    "t0 = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], shell=len(sys.argv) == 2, executable="
    "'/bin/bash' if len(sys.argv) == 2 else None)\n"
    "_, st, ru = os.wait4(p.pid, 0)\n"
    "print(time.perf_counter() - t0, ru.ru_maxrss, os.waitstatus_to_exitcode(st))\n"
)


def measure(cmd: list[str] | str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command and the children it waited for."""
    args = [cmd] if isinstance(cmd, str) else cmd
    out = subprocess.run([PY, "-S", "-c", LAUNCHER, *args], capture_output=True, text=True,
                         check=True).stdout.split()
    wall, maxrss, rc = float(out[0]), int(out[1]), int(out[2])
    if rc:
        raise SystemExit(f"benchmark command failed ({rc}): {cmd}")
    return wall, maxrss / 1024


def run_ours(tmp: Path, genome: Path, regions: Path) -> tuple[float, float]:
    script = tmp / "ours.py"
    script.write_text(OURS.format(scripts=str(REPO / "scripts"), genome=str(genome),
                                  regions=str(regions), out=str(tmp / "ours.h5")))
    return measure([PY, str(script)])


def run_baseline(tmp: Path, genome: Path, bed: Path, width: int) -> tuple[float, float]:
    script = tmp / "baseline.py"
    script.write_text(BASELINE.format(scripts=str(REPO / "scripts"), out=str(tmp / "base.h5"),
                                      width=width))
    bedtools = shutil.which("bedtools") or "/usr/bin/bedtools"
    return measure(f"set -o pipefail; {bedtools} getfasta -fi {genome} -bed {bed} -tab "
                   f"| {PY} {script}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", type=int, default=100_000)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-scaling", action="store_true", help="skip the 10 Mb vs 1 Gb run")
    args = ap.parse_args()
    n, w = args.regions, args.width

    with tempfile.TemporaryDirectory(prefix="p2m_bench_") as d:
        tmp = Path(d)
        genome, regions, bed = tmp / "g100m.fa", tmp / "regions.tsv", tmp / "regions.bed"
        write_genome(genome, 10, 10_000_000)
        write_regions(regions, bed, n, w, 10, 10_000_000)
        ours, base = [], []
        for _ in range(args.repeats):
            base.append(run_baseline(tmp, genome, bed, w))
            ours.append(run_ours(tmp, genome, regions))
        import h5py

        with h5py.File(tmp / "ours.h5") as a, h5py.File(tmp / "base.h5") as b:
            same = np.array_equal(a["codes"][:], b["codes"][:])
        t_o = statistics.median(x[0] for x in ours)
        t_b = statistics.median(x[0] for x in base)
        m_o = statistics.median(x[1] for x in ours)
        m_b = statistics.median(x[1] for x in base)
        print(f"workload: {n} windows of {w} bp from a 100 Mb genome; median of "
              f"{args.repeats} runs; outputs identical: {same}")
        print(f"{'':34s}{'regions/s':>12s}{'wall s':>9s}{'peak MiB':>10s}")
        print(f"{'ours (pyfaidx + LUT, chunked)':34s}{n / t_o:12.0f}{t_o:9.2f}{m_o:10.0f}")
        print(f"{'baseline (getfasta + Python)':34s}{n / t_b:12.0f}{t_b:9.2f}{m_b:10.0f}")
        print(f"speed-up ours/baseline: {t_b / t_o:.2f}x; memory ours/baseline: {m_o / m_b:.2f}")
        (tmp / "ours.h5").unlink()
        genome.unlink()

        if not args.skip_scaling:
            rows = []
            for label, n_chroms, length in (("10 Mb", 10, 1_000_000),
                                            ("1 Gb", 10, 100_000_000)):
                g = tmp / "scale.fa"
                write_genome(g, n_chroms, length, seed=2)
                write_regions(regions, bed, n, w, n_chroms, length, seed=3)
                t, m = run_ours(tmp, g, regions)
                rows.append((label, t, m))
                g.unlink()
                Path(f"{g}.fai").unlink()
            print("ours, same number of windows, growing genome:")
            for label, t, m in rows:
                print(f"  {label:6s} genome: {n / t:8.0f} regions/s, peak {m:.0f} MiB")
            print(f"  peak memory 1 Gb / 10 Mb: {rows[1][2] / rows[0][2]:.2f}")


if __name__ == "__main__":
    main()
