"""Benchmark of sequence extraction (a benchmark, not a test).

Workload: 100k windows of 1 kb from a random 100 Mb genome (10 chromosomes, 60-bp lines, half
the bases lower case), written as the split file of the data contract (uint8 codes, chunked
HDF5). Commands, each measured in the same run, interleaved:

- ours: ``peak2motif.extract.extract_sequences`` (windows read by ``peak2motif.genome``:
  vectorised reads of the memory-mapped FASTA, one lookup-table pass, 4,096-row chunks);
- baseline, the reference: ``bedtools getfasta -tab`` piped into a numpy lookup-table encoder
  that writes the same HDF5 in the same 4,096-row chunks (the best a user would write);
- pyfaidx: one ``faidx.fetch`` per window, encoded and written the same way (what
  ``extract_sequences`` did before ``peak2motif.genome``), for the record;
- stub: ``extract_sequences`` with reading replaced by filled arrays (its floor);
- reading only, ours (``Genome.read_codes``) and the baseline's (getfasta + LUT), codes
  discarded, no HDF5.

The codes of ours, the baseline and pyfaidx are compared and must be identical. Each command
runs in its own process started from a small launcher; wall time and peak memory
(``ru_maxrss`` from ``wait4``, the process and the children it waited for; for a pipeline,
its largest process) are measured per run, and medians are printed with ratios to the
baseline. Then ours and the stub run on 3x the windows, and ours and the baseline on a 1 Gb
genome (generated in the temporary directory and deleted with it), to show that memory stays
flat in the number of regions and in genome size.

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
    df["kind"] = "peak"
    df["unit"] = df["chrom"]
    df["split_0"] = "train"
    df["peaks"] = 1.0
    df.to_csv(path, sep="\t", index=False)
    df[["chrom", "start", "end"]].to_csv(bed, sep="\t", index=False, header=False)


OURS = textwrap.dedent("""
    import sys
    sys.path.insert(0, {scripts!r})
    from peak2motif.extract import extract_sequences
    extract_sequences({genome!r}, {regions!r}, {{0: {{"train": {out!r}}}}}, "binary",
                      chunk_size=4096)
""")

BASELINE = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {scripts!r})
    from peak2motif.splitfiles import append_split, create_split
    lut = np.full(256, 4, dtype=np.uint8)
    for i, b in enumerate(b"ACGT"):
        lut[b] = lut[b + 32] = i
    h5 = create_split({out!r}, {width}, ["peaks"], "binary", chunk_rows=1024)
    seqs, n = [], 0
    def flush():
        global seqs, n
        if seqs:
            codes = lut[np.frombuffer(b"".join(seqs), dtype=np.uint8).reshape(len(seqs), -1)]
            append_split(h5, codes, np.ones((len(seqs), 1), np.float32),
                         np.arange(n, n + len(seqs)))
            n += len(seqs)
            seqs = []
    for line in sys.stdin.buffer:
        seqs.append(line[line.index(b"\\t") + 1:].rstrip(b"\\r\\n"))
        if len(seqs) == 4096:
            flush()
    flush()
    h5.close()
""")

PYFAIDX = textwrap.dedent("""
    import sys
    import numpy as np
    import pandas as pd
    import pyfaidx
    sys.path.insert(0, {scripts!r})
    from peak2motif.sequences import encode
    from peak2motif.splitfiles import append_split, create_split
    r = pd.read_csv({regions!r}, sep="\\t", dtype={{"chrom": str}})
    fa = pyfaidx.Fasta({genome!r}, as_raw=True, sequence_always_upper=False)
    h5 = create_split({out!r}, {width}, ["peaks"], "binary", chunk_rows=1024)
    chroms, starts, ends = r.chrom.tolist(), r.start.tolist(), r.end.tolist()
    for lo in range(0, len(r), 4096):
        hi = min(len(r), lo + 4096)
        codes = np.empty((hi - lo, {width}), dtype=np.uint8)
        for j in range(lo, hi):
            codes[j - lo] = encode(fa.faidx.fetch(chroms[j], starts[j] + 1, ends[j]))
        append_split(h5, codes, np.ones((hi - lo, 1), np.float32), np.arange(lo, hi))
    h5.close()
""")

# extract_sequences with reading replaced by filled arrays: everything else it costs
# (interpreter, imports, regions table, fresh code arrays, HDF5 writes), the floor no reader
# can go under. np.full, not np.zeros: untouched zero pages would make the writes look cheap
STUB = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {scripts!r})
    from peak2motif import extract
    def filled(genome, chroms, starts, ends, chunk_size=4096):
        for lo in range(0, len(chroms), chunk_size):
            hi = min(len(chroms), lo + chunk_size)
            yield np.arange(lo, hi), np.full((hi - lo, {width}), 1, dtype=np.uint8)
    extract.iter_codes = filled
    extract.extract_sequences({genome!r}, {regions!r}, {{0: {{"train": {out!r}}}}}, "binary")
""")

# reading only, codes discarded: windows from the BED -> codes, in 4,096-row chunks
READ_OURS = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {scripts!r})
    from peak2motif.genome import Genome
    chroms = np.loadtxt({bed!r}, dtype=str, usecols=0, delimiter="\\t", ndmin=1)
    starts, ends = np.loadtxt({bed!r}, dtype=np.int64, usecols=(1, 2), delimiter="\\t",
                              ndmin=2).T
    total = 0
    with Genome({genome!r}) as g:
        for lo in range(0, len(chroms), 4096):
            total += int(g.read_codes(chroms[lo:lo + 4096], starts[lo:lo + 4096],
                                      ends[lo:lo + 4096])[:, 0].sum())
    print(total, file=sys.stderr)  # stdout is the launcher's
""")

READ_BASELINE = textwrap.dedent("""
    import sys
    import numpy as np
    lut = np.full(256, 4, dtype=np.uint8)
    for i, b in enumerate(b"ACGT"):
        lut[b] = lut[b + 32] = i
    seqs, total = [], 0
    def flush():
        global seqs, total
        if seqs:
            codes = lut[np.frombuffer(b"".join(seqs), dtype=np.uint8).reshape(len(seqs), -1)]
            total += int(codes[:, 0].sum())
            seqs = []
    for line in sys.stdin.buffer:
        seqs.append(line[line.index(b"\\t") + 1:].rstrip(b"\\r\\n"))
        if len(seqs) == 4096:
            flush()
    flush()
    print(total, file=sys.stderr)  # stdout is the launcher's
""")

TEMPLATES = {"ours": OURS, "baseline": BASELINE, "pyfaidx": PYFAIDX, "stub": STUB,
             "read_ours": READ_OURS, "read_baseline": READ_BASELINE}
LABELS = {"ours": "ours (genome.py)", "baseline": "getfasta + numpy LUT",
          "pyfaidx": "pyfaidx per window", "stub": "ours, reading stubbed",
          "read_ours": "ours, read only", "read_baseline": "getfasta + LUT, read only"}
PIPED = {"baseline", "read_baseline"}  # fed by bedtools getfasta -tab


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
    proc = subprocess.run([PY, "-S", "-c", LAUNCHER, *args], capture_output=True, text=True,
                          check=True)
    out = proc.stdout.split()
    wall, maxrss, rc = float(out[0]), int(out[1]), int(out[2])
    if rc:
        raise SystemExit(f"benchmark command failed ({rc}): {cmd}\n{proc.stderr[-2000:]}")
    return wall, maxrss / 1024


def run(kind: str, tmp: Path, genome: Path, regions: Path, bed: Path,
        width: int) -> tuple[float, float]:
    """Run one command of ``TEMPLATES`` (writing ``tmp/<kind>.h5``); wall s, peak MiB."""
    script = tmp / f"run_{kind}.py"  # not pyfaidx.py: it would shadow the module
    script.write_text(TEMPLATES[kind].format(
        scripts=str(REPO / "scripts"), genome=str(genome), regions=str(regions), bed=str(bed),
        out=str(tmp / f"{kind}.h5"), width=width))
    if kind not in PIPED:
        return measure([PY, str(script)])
    bedtools = shutil.which("bedtools") or "/usr/bin/bedtools"
    return measure(f"set -o pipefail; {bedtools} getfasta -fi {genome} -bed {bed} -tab "
                   f"| {PY} {script}")


def same_codes(tmp: Path, kinds: list[str]) -> bool:
    import h5py

    codes = []
    for kind in kinds:
        with h5py.File(tmp / f"{kind}.h5") as h5:
            codes.append(h5["codes"][:])
    return all(np.array_equal(codes[0], c) for c in codes[1:])


def median_runs(kinds: list[str], repeats: int, *args) -> dict[str, tuple[float, float]]:
    """Median wall time and median peak MiB per command, the commands interleaved."""
    runs: dict[str, list] = {k: [] for k in kinds}
    for _ in range(repeats):
        for kind in kinds:
            runs[kind].append(run(kind, *args))
    return {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
            for k, v in runs.items()}


def report(title: str, n: int, res: dict[str, tuple[float, float]], same: bool | None,
           reference: str | None = "baseline") -> None:
    """Print medians; ratios are reference time / time (speed-up) and memory / reference."""
    t_b, m_b = res[reference] if reference in res else (None, None)
    print(title + ("" if same is None else f"; identical codes: {same}"))
    print(f"  {'':26s}{'regions/s':>11s}{'wall s':>8s}{'peak MiB':>10s}"
          + (f"{'speed-up':>10s}{'memory':>8s}" if t_b else ""))
    for kind, (t, m) in res.items():
        ratios = f"{t_b / t:9.2f}x{m / m_b:8.2f}" if t_b else ""
        print(f"  {LABELS[kind]:26s}{n / t:11.0f}{t:8.2f}{m:10.0f}{ratios}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", type=int, default=100_000)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-scaling", action="store_true",
                    help="skip the 1 Gb genome and the 3x-windows runs")
    args = ap.parse_args()
    n, w = args.regions, args.width
    failed = False
    with tempfile.TemporaryDirectory(prefix="p2m_bench_") as d:
        tmp = Path(d)
        genome, regions, bed = tmp / "g100m.fa", tmp / "regions.tsv", tmp / "regions.bed"
        write_genome(genome, 10, 10_000_000)
        write_regions(regions, bed, n, w, 10, 10_000_000)
        args_ = (tmp, genome, regions, bed, w)
        kinds = ["ours", "baseline", "pyfaidx", "stub"]
        res = median_runs(kinds, args.repeats, *args_)
        same = same_codes(tmp, kinds[:3])
        failed |= not same
        report(f"{n} windows of {w} bp -> split file, 100 Mb genome, median of "
               f"{args.repeats}", n, res, same)
        res = median_runs(["read_ours", "read_baseline"], args.repeats, *args_)
        report("the same, reading only (codes discarded, no HDF5)", n, res, None,
               "read_baseline")
        if not args.skip_scaling:
            r3, b3 = tmp / "regions3.tsv", tmp / "regions3.bed"
            write_regions(r3, b3, 3 * n, w, 10, 10_000_000, seed=4)
            res = median_runs(["ours", "stub"], args.repeats, tmp, genome, r3, b3, w)
            report(f"{3 * n} windows, 100 Mb genome, median of {args.repeats}", 3 * n, res,
                   None, None)
            genome.unlink()
            big = tmp / "g1g.fa"
            write_genome(big, 10, 100_000_000, seed=2)
            write_regions(regions, bed, n, w, 10, 100_000_000, seed=3)
            res = median_runs(["ours", "baseline"], args.repeats, tmp, big, regions, bed, w)
            same = same_codes(tmp, ["ours", "baseline"])
            failed |= not same
            report(f"{n} windows, 1 Gb genome, median of {args.repeats}", n, res, same)
    if failed:
        raise SystemExit("the codes differ between the commands")


if __name__ == "__main__":
    main()
