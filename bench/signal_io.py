"""Signal I/O against what a user would run instead: BAM -> count bigWigs, and bigWig windows
-> (N, L, S) arrays.

    .venv/bin/python bench/signal_io.py [--reads 3000000] [--out bench/results]

Conversion (ChIP-seq, 5' ends per strand, ENCODE's filters, two bigWigs), each tool run as a
process under /usr/bin/time -v (wall, CPU = user + sys, peak RSS), best of --repeats:
- peak2motif: ``make_signal_track`` (one process, one core);
- samtools view -F 3844 -q 30 | bedtools genomecov -5 -bg -strand +/- (Debian), then the
  bedGraphs into bigWigs with pandas + pyBigWig's array ``addEntries`` (no zooms, as ours);
- deepTools ``bamCoverage --binSize 1 --Offset 1`` with the same flags and MAPQ, per strand;
- bpnet-lite's ``bam2bw`` (it filters nothing: every mapped read counts).
deepTools, bam2bw and pybbi go into a throwaway venv (--venv), never into requirements.
Ratios are against the fastest external tool of the same run; peak memory is measured at two
genome sizes with the same reads, to show whether it grows with the genome. The outputs of
peak2motif and of samtools+bedtools are compared base by base.

Reading: N windows of L bases around peaks, both strands: pyBigWig ``values`` per window
(numpy=True), pybigtools ``values`` per window (peak2motif.signal.read_windows), pybbi
``stackup`` (one call for all windows).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
EXTERNAL = ["deeptools==3.5.6", "bam2bw==0.5.1", "pybbi==0.4.2", "pyBigWig==0.3.29",
            "pysam==0.24.1", "numpy==2.4.6", "pybigtools==0.3.0"]


def write_genome(path: Path, n_chrom: int, length: int, seed: int) -> dict[str, int]:
    """A random FASTA (the conversion reads only names and lengths) and its .fai."""
    import pysam

    rng = np.random.default_rng(seed)
    sizes = {f"chr{i + 1}": length for i in range(n_chrom)}
    with open(path, "wb") as fh:
        for chrom, n in sizes.items():
            fh.write(f">{chrom}\n".encode())
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n)]
            lines = np.full((n // 60, 61), ord("\n"), np.uint8)
            lines[:, :60] = seq[: n // 60 * 60].reshape(-1, 60)
            fh.write(lines.tobytes())
            if n % 60:
                fh.write(seq[n // 60 * 60:].tobytes() + b"\n")
    pysam.faidx(str(path))
    return sizes


def write_bam(path: Path, sizes: dict[str, int], n_reads: int, seed: int) -> None:
    """ChIP-like single-end 50-bp reads: 30 % in 5,000 peaks (sd 80 bp), the rest uniform;
    10 % MAPQ 5, 5 % flagged duplicate; sorted and indexed with pysam's samtools."""
    import pysam

    rng = np.random.default_rng(seed)
    names = list(sizes)
    chrom = rng.integers(0, len(names), n_reads)
    length = np.array([sizes[c] for c in names])[chrom]
    pos = rng.integers(0, length - 60)
    in_peak = rng.random(n_reads) < 0.3
    centres = rng.integers(1000, length.min() - 1000, 5000)
    pos[in_peak] = np.clip(centres[rng.integers(0, 5000, in_peak.sum())]
                           + rng.normal(0, 80, in_peak.sum()).astype(int), 0,
                           length[in_peak] - 60)
    flag = (rng.random(n_reads) < 0.5) * 16 + (rng.random(n_reads) < 0.05) * 1024
    mapq = np.where(rng.random(n_reads) < 0.1, 5, 60)
    sam = path.with_suffix(".sam")
    with open(sam, "w") as fh:
        fh.write("@HD\tVN:1.6\tSO:unsorted\n")
        fh.writelines(f"@SQ\tSN:{c}\tLN:{n}\n" for c, n in sizes.items())
        frame = pd.DataFrame({"q": [f"r{i}" for i in range(n_reads)], "f": flag,
                              "c": np.array(names)[chrom], "p": pos + 1, "m": mapq,
                              "cig": "50M", "r": "*", "pn": 0, "t": 0, "s": "A" * 50,
                              "ql": "I" * 50})
        frame.to_csv(fh, sep="\t", header=False, index=False)
    pysam.sort("-o", str(path), "-@", "2", str(sam))
    pysam.index(str(path))
    sam.unlink()


def timed(cmd: str, cwd: Path) -> dict:
    """Run ``cmd`` in bash under /usr/bin/time -v: wall s, CPU s, peak RSS MB."""
    proc = subprocess.run(["/usr/bin/time", "-v", "bash", "-c", cmd], cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    err = proc.stderr

    def field(name):
        return re.search(rf"{name}: ([\d.:]+)", err).group(1)

    wall = field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)").split(":")
    wall_s = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
    cpu = float(field("User time \\(seconds\\)")) + float(field("System time \\(seconds\\)"))
    return {"wall_s": wall_s, "cpu_s": cpu, "peak_rss_mb": int(field(
        r"Maximum resident set size \(kbytes\)")) / 1024}


BEDGRAPH_TO_BIGWIG = textwrap.dedent("""\
    import sys, numpy as np, pandas as pd, pyBigWig
    sizes = pd.read_csv(sys.argv[1], sep="\\t", header=None, usecols=[0, 1])
    bw = pyBigWig.open(sys.argv[3], "w")
    bw.addHeader(list(zip(sizes[0], sizes[1].astype(int))), maxZooms=0)
    for chunk in pd.read_csv(sys.argv[2], sep="\\t", header=None, chunksize=2_000_000,
                             dtype={0: str, 1: np.int64, 2: np.int64, 3: np.float64}):
        for chrom, part in chunk.groupby(0, sort=False):
            bw.addEntries([chrom] * len(part), part[1].to_numpy(), ends=part[2].to_numpy(),
                          values=part[3].to_numpy())
    bw.close()
""")


def ensure_tools(venv: Path) -> None:
    """samtools (Debian) and the throwaway venv of the external Python tools."""
    if not shutil.which("samtools") or not shutil.which("bedtools"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "samtools", "bedtools"], check=True)
    if not (venv / "bin" / "bamCoverage").exists():
        subprocess.run([PY, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *EXTERNAL], check=True)


def convert_commands(bam: Path, fasta: Path, venv: Path, work: Path) -> dict[str, str]:
    (work / "bg2bw.py").write_text(BEDGRAPH_TO_BIGWIG)
    vbin = venv / "bin"
    ours = (f"PYTHONPATH={REPO / 'scripts'} NUMBA_CACHE_DIR={work / 'numba'} {PY} -c "
            f"\"from peak2motif.signal import make_signal_track; make_signal_track('{bam}', "
            f"'{fasta}', 'chip', ['ours.plus.bw', 'ours.minus.bw'])\"")
    bedtools = " && ".join(
        f"samtools view -u -F 3844 -q 30 {bam} | bedtools genomecov -ibam stdin -5 -bg "
        f"-strand {s} > bt.{n}.bg && {PY} bg2bw.py {fasta}.fai bt.{n}.bg bt.{n}.bw"
        for s, n in (("+", "plus"), ("-", "minus")))
    deeptools = " && ".join(
        f"{vbin}/bamCoverage -b {bam} -o dt.{n}.bw --binSize 1 --Offset 1 "
        f"--minMappingQuality 30 {flags} -p 1"
        for n, flags in (("plus", "--samFlagExclude 3860"),
                         ("minus", "--samFlagInclude 16 --samFlagExclude 3844")))
    bam2bw = f"{vbin}/bam2bw {bam} -s {fasta} -n b2b"
    return {"peak2motif": ours, "samtools+bedtools+pyBigWig": bedtools,
            "deeptools bamCoverage": deeptools, "bam2bw (no filters)": bam2bw}


def same_tracks(a: Path, b: Path, sizes: dict[str, int]) -> bool:
    import pybigtools

    ra, rb = pybigtools.open(str(a)), pybigtools.open(str(b))
    return all(np.array_equal(ra.values(c, 0, n, uncovered=0.0, fillna=None),
                              rb.values(c, 0, n, uncovered=0.0, fillna=None))
               for c, n in sizes.items())


CASES = (  # (genome label, chromosomes, chromosome length, reads, tools)
    ("50 Mb", 5, 10_000_000, "small", "all"),
    ("50 Mb", 5, 10_000_000, "reads", "fast"),
    ("500 Mb", 5, 100_000_000, "reads", "memory"),
)


def bench_convert(args, work: Path) -> pd.DataFrame:
    """deepTools' bamCoverage spends ~0.6 ms per read here (binSize 1 walks every base of the
    genome), so it runs on the small read set only; the others on both."""
    rows = []
    for label, n_chrom, length, reads_key, which in CASES:
        n_reads = args.small_reads if reads_key == "small" else args.reads
        gdir = work / f"{label.replace(' ', '')}_{n_reads}"
        gdir.mkdir(exist_ok=True)
        fasta, bam = gdir / "genome.fa", gdir / "reads.bam"
        sizes = write_genome(fasta, n_chrom, length, seed=1)
        write_bam(bam, sizes, n_reads, seed=2)
        cmds = convert_commands(bam, fasta, args.venv, gdir)
        keep = {"all": list(cmds),
                "fast": ["peak2motif", "samtools+bedtools+pyBigWig", "bam2bw (no filters)"],
                "memory": ["peak2motif", "samtools+bedtools+pyBigWig"]}[which]
        for tool in keep:
            repeats = 1 if tool.startswith("deeptools") else args.repeats  # minutes a run
            runs = [timed(cmds[tool], gdir) for _ in range(repeats)]
            best = min(runs, key=lambda r: r["wall_s"])
            rows.append({"genome": label, "reads": n_reads, "tool": tool, **best,
                         "cpu_s_min": min(r["cpu_s"] for r in runs)})
            print(rows[-1], flush=True)
        agree = all(same_tracks(gdir / f"ours.{s}.bw", gdir / f"bt.{s}.bw", sizes)
                    for s in ("plus", "minus"))
        print(f"{label}, {n_reads} reads: peak2motif == samtools+bedtools at every base:",
              agree, flush=True)
        rows[-len(keep)]["identical_to_bedtools"] = agree
        for path in gdir.glob("*.bg"):
            path.unlink()
    table = pd.DataFrame(rows)
    for (genome, reads), part in table.groupby(["genome", "reads"], sort=False):
        ext = part[part["tool"] != "peak2motif"]
        best = ext.loc[ext["wall_s"].idxmin()]
        ours = part[part["tool"] == "peak2motif"].iloc[0]
        table.loc[part.index, "speedup_vs_best_external"] = best["wall_s"] / part["wall_s"]
        print(f"{genome}, {reads} reads: peak2motif {ours['wall_s']:.1f} s vs the fastest "
              f"external ({best['tool']}) {best['wall_s']:.1f} s: "
              f"{best['wall_s'] / ours['wall_s']:.2f}x; peak RSS {ours['peak_rss_mb']:.0f} vs "
              f"{best['peak_rss_mb']:.0f} MB")
    return table


READ_EXTERNAL = textwrap.dedent("""\
    import json, sys, time, numpy as np, bbi
    chroms, starts, L = json.load(open(sys.argv[1]))
    starts = np.asarray(starts)
    t = time.perf_counter()
    out = np.stack([bbi.stackup(p, chroms, starts, starts + L, bins=L, missing=0.0)
                    for p in sys.argv[2:]], axis=-1).astype(np.float32)
    print(json.dumps({"s": time.perf_counter() - t, "sum": float(out.sum())}))
""")


def bench_read(args, work: Path) -> pd.DataFrame:
    import pyBigWig

    sys.path.insert(0, str(REPO / "scripts"))
    from peak2motif.signal import read_windows

    gdir = work / f"50Mb_{args.reads}"
    tracks = [gdir / "ours.plus.bw", gdir / "ours.minus.bw"]
    rng = np.random.default_rng(3)
    sizes = pyBigWig.open(str(tracks[0])).chroms()
    names = list(sizes)
    rows = []
    for length in (1000, 2114):
        chroms = [names[i] for i in rng.integers(0, len(names), args.windows)]
        starts = rng.integers(0, min(sizes.values()) - length, args.windows)

        def pybigwig_values(chroms=chroms, starts=starts, length=length):
            out = np.zeros((len(starts), length, 2), np.float32)
            for s, path in enumerate(tracks):
                bw = pyBigWig.open(str(path))
                for i, (c, a) in enumerate(zip(chroms, starts, strict=True)):
                    out[i, :, s] = bw.values(c, int(a), int(a) + length, numpy=True)
                bw.close()
            return np.nan_to_num(out, copy=False)

        def ours(chroms=chroms, starts=starts, length=length):
            return read_windows(tracks, chroms, starts, length)

        results = {}
        for name, fn in (("pyBigWig values per window", pybigwig_values),
                         ("peak2motif read_windows (pybigtools)", ours)):
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t)
            results[name] = (min(times), float(out.sum()))
        spec = work / "windows.json"
        spec.write_text(json.dumps([chroms, starts.tolist(), length]))
        (work / "read_bbi.py").write_text(READ_EXTERNAL)
        times = []
        for _ in range(args.repeats):
            proc = subprocess.run([str(args.venv / "bin" / "python"), str(work / "read_bbi.py"),
                                   str(spec), *map(str, tracks)], capture_output=True,
                                  text=True, check=True)
            res = json.loads(proc.stdout)
            times.append(res["s"])
        results["pybbi stackup (one call)"] = (min(times), res["sum"])
        base = results["pyBigWig values per window"][0]
        for name, (sec, total) in results.items():
            rows.append({"windows": args.windows, "length": length, "tracks": 2, "reader": name,
                         "seconds": sec, "windows_per_s": args.windows / sec,
                         "speedup_vs_pyBigWig": base / sec, "sum_of_counts": total})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=3_000_000)
    parser.add_argument("--small-reads", type=int, default=200_000)
    parser.add_argument("--windows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) /
                        "p2m-signal-bench-venv")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--read-only", action="store_true",
                        help="only the reading part, on the tracks an earlier run left in --work")
    args = parser.parse_args()
    ensure_tools(args.venv)
    work = args.work or Path(tempfile.mkdtemp(prefix="p2m-signal-"))
    work.mkdir(parents=True, exist_ok=True)
    print("work folder:", work, "| load average:", os.getloadavg(), flush=True)
    if not args.read_only:
        convert = bench_convert(args, work)
        convert.to_csv(args.out / "signal_convert.tsv", sep="\t", index=False,
                       float_format="%.3g")
        print(convert.to_string())
    read = bench_read(args, work)
    read.to_csv(args.out / "signal_read.tsv", sep="\t", index=False, float_format="%.4g")
    print(read.to_string())


if __name__ == "__main__":
    main()
