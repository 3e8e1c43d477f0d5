"""Bad signal input, found before any long job: each check raises one InputError paragraph
that names the file (or config key) and the fix.

Light checks (headers, the first lines) run at workflow start-up through
:func:`check_dataset`; the ones that need the whole track (reads in peaks) run in the rule
``check_signal``, right after the track exists and before anything trains on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from peak2motif.errors import InputError
from peak2motif.signal.conventions import ASSAYS, source_kind

log = logging.getLogger(__name__)

PAIR_KEYS = {"plus", "minus"}


def check_assay(assay: str, kind: str, source, key: str = "assay") -> None:
    """An assay we know, and a source that suits it."""
    if assay not in ASSAYS:
        raise InputError(f"unknown assay {assay!r}", key=key,
                         fix=f"use one of {', '.join(ASSAYS)}")
    if kind == "unknown":
        raise InputError("cannot tell what kind of signal file this is from its name",
                         path=str(source),
                         fix="give a BAM (.bam), a fragments file (.tsv, .tsv.gz, .bed.gz), "
                         "a bigWig (.bw, .bigWig) or a pair {plus: a.bw, minus: b.bw}")
    if kind == "fragments" and assay != "atac":
        raise InputError(f"a fragments file holds Tn5 insertions, but the assay is {assay}",
                         path=str(source), fix="set `assay: atac` for this dataset")


def signal_sources(ds: Mapping, tasks: list[str], name: str = "NAME") -> dict:
    """``{task: source}`` of a dataset entry: its ``signal`` resolved against its tasks
    (the keys of ``peaks``). A source is a path or a ``{plus, minus}`` pair of bigWigs.
    Empty when the dataset has no ``signal``."""
    signal = ds.get("signal")
    if signal is None:
        return {}
    key = f"datasets: {name}: signal"
    is_pair = (isinstance(signal, Mapping) and set(signal) == PAIR_KEYS
               and set(tasks) != PAIR_KEYS)
    if isinstance(signal, str) or is_pair:
        if len(tasks) != 1:
            raise InputError(f"one signal for {len(tasks)} tasks ({', '.join(tasks)})",
                             key=key, fix="give signal as a mapping with the same task "
                             "names as peaks: {TASK: file, ...}")
        return {tasks[0]: dict(signal) if is_pair else signal}
    missing = [t for t in tasks if t not in signal]
    extra = [t for t in signal if t not in tasks]
    if missing or extra:
        raise InputError(
            "signal is given for some tasks and not for others"
            + (f" (no signal for: {', '.join(missing)})" if missing else "")
            + (f" (not a task of peaks: {', '.join(extra)})" if extra else ""),
            key=key, fix=f"give one signal file per task of peaks ({', '.join(tasks)}), "
            "or remove `signal` to train on the peaks alone")
    return {t: dict(signal[t]) if isinstance(signal[t], Mapping) else signal[t]
            for t in tasks}


def control_sources(ds: Mapping, tasks: list[str], name: str = "NAME") -> dict:
    """``{task: control source}``: one control shared by every task, or one per task."""
    control = ds.get("control")
    if control is None:
        return {}
    key = f"datasets: {name}: control"
    if ds.get("assay", "chip") != "chip":
        raise InputError("a control track is for ChIP-seq only", key=key,
                         fix="remove `control`, or set `assay: chip`")
    if ds.get("signal") is None:
        raise InputError("control is given without signal", key=key,
                         fix="add `signal` (the ChIP reads) or remove `control`")
    if isinstance(control, str) or (isinstance(control, Mapping) and set(control) == PAIR_KEYS
                                    and set(tasks) != PAIR_KEYS):
        return {t: control for t in tasks}
    missing = [t for t in tasks if t not in control]
    if missing:
        raise InputError(f"no control for task(s) {', '.join(missing)}", key=key,
                         fix="give one control for all tasks, or one per task of peaks")
    return {t: control[t] for t in tasks}


def name_mismatch(path: str, names: list[str], sizes: Mapping[str, int],
                  genome: str | None) -> InputError:
    """The error for a file none of whose chromosome names is in the genome."""
    fasta = list(sizes)
    have = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    want = ", ".join(fasta[:4]) + (", ..." if len(fasta) > 4 else "")
    prefixed = sum(("chr" + n) in sizes for n in names)
    stripped = sum(n.removeprefix("chr") in sizes for n in names if n.startswith("chr"))
    if prefixed:
        fix = ("its names lack the 'chr' prefix of the FASTA: use a FASTA named like the "
               "reads (1, 2, ...), or rename them (for a BAM: samtools view -h | sed "
               "'s/SN:/SN:chr/' | samtools view -b)")
    elif stripped:
        fix = ("its names carry a 'chr' prefix the FASTA lacks: use a FASTA named like the "
               "reads (chr1, chr2, ...), or rename them to the FASTA's names")
    else:
        fix = "use the genome FASTA the reads were aligned to"
    return InputError(f"none of its chromosome names ({have}) is in the genome FASTA "
                      f"{genome or ''} ({want})".replace("  ", " "), path=path, fix=fix)


def _check_names(path: str, refs: list[tuple[str, int]], sizes: Mapping[str, int],
                 genome: str | None) -> None:
    names = [n for n, _ in refs]
    if refs and not any(n in sizes for n in names):
        raise name_mismatch(path, names, sizes, genome)
    for n, length in refs:
        if n in sizes and length != sizes[n]:
            raise InputError(f"chromosome {n} is {length:,} bp long here but "
                             f"{sizes[n]:,} bp in the genome FASTA {genome or ''}", path=path,
                             fix="use the FASTA of the assembly the reads were aligned to")


def check_bam(path: str, sizes: Mapping[str, int], genome: str | None = None) -> None:
    """Indexed, coordinate-sorted, chromosome names and lengths of the FASTA."""
    import pysam

    try:
        bam = pysam.AlignmentFile(path, "rb")
    except (ValueError, OSError) as err:
        raise InputError(f"cannot be read as a BAM ({err})", path=path,
                         fix="give a BAM file (samtools view -b converts SAM)") from None
    with bam:
        order = bam.header.to_dict().get("HD", {}).get("SO")
        if order not in (None, "coordinate"):
            raise InputError(f"the reads are sorted by {order}, not by position", path=path,
                             fix=f"samtools sort -o sorted.bam {path} && samtools index "
                             "sorted.bam, and point `signal` at sorted.bam")
        if not bam.has_index():
            raise InputError("the BAM has no index (.bai or .csi beside it)", path=path,
                             fix=f"index it: samtools index {path}")
        _check_names(path, list(zip(bam.references, bam.lengths, strict=True)), sizes, genome)


def check_bigwig(path: str, sizes: Mapping[str, int], genome: str | None = None) -> None:
    """Chromosome names of the FASTA; no NaN and no negative value (the file's summary).

    The summary is read with pybigtools: pyBigWig's ``header()`` crashes on a file that
    holds NaN, and a NaN read through ``values(uncovered=0)`` comes back as 0.
    """
    import pybigtools

    if not Path(path).exists():
        raise InputError("the file does not exist", path=path, fix="check the path")
    try:
        bw = pybigtools.open(str(path))
        ok = bw.is_bigwig
    except Exception:  # pybigtools raises its own error types for non-bigWig files
        ok = False
    if not ok:
        raise InputError("not a bigWig file", path=path,
                         fix="give a bigWig of per-base counts (bedGraphToBigWig makes one)")
    try:
        _check_names(path, list(bw.chroms().items()), sizes, genome)
        summary = bw.info()["summary"]
    finally:
        bw.close()
    if not summary.get("basesCovered"):
        return
    if np.isnan(summary["sum"]) or np.isnan(summary["min"]):
        raise InputError("the bigWig holds NaN values", path=path,
                         fix="write 0 where there are no reads (counts, not NaN)")
    if summary["min"] < 0:
        raise InputError(f"the bigWig holds negative values (minimum {summary['min']:g}); "
                         "a count track cannot", path=path,
                         fix="give per-base read counts (not a log ratio or a "
                         "background-subtracted signal)")


def check_fragments_head(path: str, sizes: Mapping[str, int], genome: str | None = None,
                         rows: int = 20_000) -> None:
    """The first ``rows`` lines: a fragments layout, sorted, and, where none of their
    chromosomes is in the FASTA only for want of a 'chr' prefix, the names. It runs at every
    workflow start (every cluster job's too), so it reads a head, not the file; the
    conversion checks the rest."""
    from peak2motif.signal.fragments import cut_sites

    names: list[str] = []
    stats: dict = {}
    for _ in cut_sites(path, sizes, genome, rows=rows, max_rows=rows, stats=stats, seen=names):
        pass  # reading is the check: sorting and layout errors raise on the way
    if names and not stats.get("kept"):
        error = name_mismatch(path, names, sizes, genome)
        if "prefix" in (error.fix or ""):
            raise error


def check_source(source, sizes: Mapping[str, int], genome: str | None, assay: str,
                 key: str) -> None:
    """The light checks of one signal or control source."""
    kind = source_kind(source)
    check_assay(assay, kind, source)
    if kind == "bigwig_pair":
        if set(source) != PAIR_KEYS:
            raise InputError(f"a pair of bigWigs needs the keys plus and minus, got "
                             f"{', '.join(map(str, source))}", key=key,
                             fix="write {plus: plus.bw, minus: minus.bw}")
        for strand in ("plus", "minus"):
            if source_kind(source[strand]) != "bigwig":
                raise InputError("a strand of a pair must be a bigWig", path=source[strand],
                                 key=key, fix="give two bigWigs, or one BAM")
            check_bigwig(source[strand], sizes, genome)
    elif kind == "bigwig":
        check_bigwig(source, sizes, genome)
    elif kind == "bam":
        check_bam(source, sizes, genome)
    elif kind == "fragments":
        check_fragments_head(source, sizes, genome)


def signal_in_peaks(tracks: list[str], peaks: str, min_fraction: float = 0.5,
                    max_peaks: int = 5000) -> dict:
    """Reads in peaks: how many peaks have at least one count in their interval.

    Up to ``max_peaks`` peaks, evenly spread over the file, are read. Fewer than
    ``min_fraction`` of them with a read means signal and peaks do not belong together.
    """
    import pybigtools

    from peak2motif.regions import read_bed

    first = pybigtools.open(str(tracks[0]))
    try:
        known = dict(first.chroms())
    finally:
        first.close()
    table = read_bed(peaks, known, allow_unknown=True)
    if len(table) > max_peaks:
        table = table.iloc[np.linspace(0, len(table) - 1, max_peaks).astype(int)]
    counts = np.zeros(len(table))
    for path in tracks:
        reader = pybigtools.open(str(path))
        try:
            sizes = reader.chroms()
            for i, (chrom, start, end) in enumerate(
                    zip(table["chrom"], table["start"], table["end"], strict=True)):
                size = sizes.get(chrom)
                if size is None or start >= size:
                    continue
                vals = reader.values(chrom, int(start), int(min(end, size)), uncovered=0.0,
                                     fillna=None)
                counts[i] += float(np.nansum(vals))
        finally:
            reader.close()
    with_reads = float(np.mean(counts > 0)) if len(counts) else 0.0
    summary = {"peaks_read": len(counts), "with_reads": with_reads,
               "median_count": float(np.median(counts)) if len(counts) else 0.0}
    log.info("signal in peaks: %s", summary)
    if with_reads < min_fraction:
        raise InputError(
            f"only {with_reads:.0%} of {len(counts)} peaks of {peaks} have any read in the "
            f"signal {', '.join(map(str, tracks))} (at least {min_fraction:.0%} expected)",
            path=str(tracks[0]),
            fix="check that the signal and the peaks come from the same experiment and "
            "assembly, and that the BAM filters (signal: min_mapq, duplicates) keep reads")
    return summary
