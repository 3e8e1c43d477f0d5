"""Region preparation: peaks -> fixed windows, negatives, labels and the split into folds.

Accepted peak files
-------------------
BED3, BED6+ and narrowPeak, plain or gzipped; ``track``, ``browser`` and ``#`` lines are
skipped; columns are tab-separated (runs of spaces are accepted too). The window centre is
the narrowPeak summit (``start + column 10``) where column 10 is present and not -1,
otherwise the midpoint. Regression reads narrowPeak column 7 (signalValue).

Output ``regions.tsv`` (one row per window)
-------------------------------------------
``chrom start end name kind unit split_0 .. split_{K-1}`` then one label column per task
(multiclass adds ``background``). ``kind`` is ``peak`` (a positive), ``background`` (a genomic
negative) or ``shuffle`` (a dinucleotide-shuffled copy of the peak window at the same
coordinates; extraction shuffles it). ``unit`` is the chromosome, or the block of a chromosome
(``chrom:start-end``), that splits keep together. ``split_k`` is the region's split (train,
valid, test) in fold k: with K folds every unit is in the test split of exactly one fold, so
every region is predicted and explained by a model that never saw it.

Steps, each a function from intervals to intervals
--------------------------------------------------
1. :func:`read_bed` validates every peak file (and the blacklist) before any long work.
2. :func:`peak_windows` merges summits within ``merge_distance`` and centres windows on them;
   :func:`filter_windows` drops windows off a chromosome end, on the blacklist or with too
   many N, counting each reason.
3. :func:`split_units` chooses the units (whole chromosomes, or blocks when too few
   chromosomes carry peaks, e.g. a bacterial genome) and :func:`assign_folds` (K > 1) or
   :func:`assign_splits` (K = 1) gives each unit its split in each fold.
4. Negatives come from :data:`NEGATIVE_STRATEGIES`, a table of functions: ``gc_matched``,
   ``flanks`` or ``dinuc_shuffle``. When the genome leaves too little room for GC-matched
   windows (a genome that is mostly peaks), the margin around peaks is halved step by step
   and, if still short, the rest are dinucleotide shuffles; both are logged and recorded in
   ``summary.tsv`` (``negatives.fallback: false`` stops with a message instead).
5. :func:`window_labels`: a window is positive for a task when it and one of the task's peaks
   overlap by at least half of either (bedtools ``intersect -f 0.5 -F 0.5 -e``), and for the
   task(s) whose summit it is centred on. Regression labels are log1p(signalValue) of the
   strongest such peak; multiclass labels are one-hot over the tasks plus ``background``.
"""

from __future__ import annotations

import gzip
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from peak2motif import regiontable
from peak2motif.errors import InputError
from peak2motif.extract import window_stats
from peak2motif.genome import chromosome_lengths
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
KINDS = ("peak", "background", "shuffle")
POOL_FACTOR = 5  # candidate background windows per wanted gc_matched negative, per round
POOL_ROUNDS = 4  # at most this many rounds of candidates
BED_HELP = ("BED columns are tab-separated: chrom, start (0-based), end, then optionally "
            "name, score, strand, signalValue, pValue, qValue, summit offset (narrowPeak)")


def resolve_task_type(task: str, n_files: int) -> str:
    """``auto`` -> ``binary`` for one peak file, ``multitask`` for several."""
    if task == "auto":
        return "binary" if n_files == 1 else "multitask"
    return task


def split_columns(regions: pd.DataFrame) -> list[str]:
    """The ``split_k`` columns of a regions table, in fold order."""
    return regiontable.split_names(list(regions.columns))


def label_columns(regions: pd.DataFrame) -> list[str]:
    """The task (label) columns of a regions table."""
    return regiontable.label_names(list(regions.columns))


def read_regions(path: str | Path) -> pd.DataFrame:
    """Read ``regions.tsv`` (the contract above); InputError if it lacks a column."""
    regions = pd.read_csv(path, sep="\t", dtype={"chrom": str, "name": str, "kind": str,
                                                 "unit": str})
    regiontable.check_columns(list(regions.columns), path)
    return regions


# --------------------------------------------------------------------------------------
# reading and validating BED files


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt")
    return open(path)


def _chr_hint(chrom: str, known: set[str]) -> str:
    if chrom.startswith("chr") and chrom[3:] in known:
        return ("the genome names chromosomes without the 'chr' prefix: strip it, e.g. "
                "`sed 's/^chr//' PEAKS > fixed.bed`")
    if "chr" + chrom in known:
        return ("the genome names chromosomes with a 'chr' prefix: add it, e.g. "
                "`sed 's/^/chr/' PEAKS > fixed.bed`")
    sample = ", ".join(sorted(known)[:5])
    return (f"use the genome's chromosome names ({sample}, ...), or list this chromosome in "
            "the dataset's 'exclude_chromosomes' to skip its peaks")


def _coordinates(f: list[str], text: str, err) -> tuple[int, int]:
    try:
        start, end = int(f[1]), int(f[2])
    except ValueError:
        raise err(f"malformed line {text[:60]!r}: start and end must be integers",
                  fix=BED_HELP) from None
    if start < 0 or end < 0:
        raise err(f"negative coordinate ({start}, {end})",
                  fix="BED coordinates are 0-based and non-negative; correct or remove the line")
    if start > end:
        raise err(f"start {start} is greater than end {end}",
                  fix="swap the two columns or remove the line")
    return start, end


def _summit(f: list[str], start: int, end: int, err) -> int:
    """The narrowPeak summit (start + column 10) where given and not -1, else the midpoint."""
    if len(f) < 10 or f[9] in ("", "."):
        return (start + end) // 2
    try:
        off = int(f[9])
    except ValueError:
        raise err(f"summit (column 10) {f[9]!r} is not an integer", fix=BED_HELP) from None
    if off == -1:
        return (start + end) // 2
    if not 0 <= off <= end - start:
        raise err(f"summit offset {off} lies outside the peak (length {end - start})",
                  fix="column 10 is the summit's offset from start, or -1 for none")
    return start + off


def _read_lines(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        raise InputError("peak file not found", path=str(path),
                         fix="check the path in your config; relative paths start at the "
                             "working directory")
    with _open_text(path) as fh:
        try:
            return list(enumerate(fh, start=1))
        except (UnicodeDecodeError, OSError, EOFError) as err:
            raise InputError(f"cannot read the file as text ({err})", path=str(path),
                             fix="give a plain or gzipped BED/narrowPeak file") from None


def read_bed(
    path: str | Path,
    lengths: dict[str, int],
    *,
    skip_chromosomes: set[str] | frozenset = frozenset(),
    allow_unknown: bool = False,
    need_signal: bool = False,
) -> pd.DataFrame:
    """Read and validate a BED-like file.

    Returns a frame with columns chrom, start, end, name, summit (absolute), signal, line.
    Lines on ``skip_chromosomes`` are dropped silently (the caller counts them); lines on
    chromosomes missing from ``lengths`` are an error unless ``allow_unknown``. A bad line
    raises :class:`InputError` with the file, the line number, what was wrong and the fix.
    """
    path = Path(path)
    known = set(lengths)
    rows = []
    for no, raw in _read_lines(path):
        text = raw.rstrip("\n\r")
        if not text.strip() or text.startswith(("#", "track", "browser")):
            continue

        def err(problem, fix=None, no=no):
            return InputError(problem, path=str(path), line=no, fix=fix)

        f = text.split("\t") if "\t" in text else text.split()
        if len(f) < 3:
            raise err(f"malformed line {text[:60]!r}: expected at least 3 columns, found "
                      f"{len(f)}", fix=BED_HELP)
        chrom = f[0]
        start, end = _coordinates(f, text, err)
        if chrom in skip_chromosomes or (chrom not in known and allow_unknown):
            continue
        if chrom not in known:
            raise err(f"chromosome '{chrom}' is not in the genome FASTA",
                      fix=_chr_hint(chrom, known).replace("PEAKS", str(path)))
        summit = _summit(f, start, end, err)
        try:
            signal = float(f[6]) if len(f) >= 7 else math.nan
        except ValueError:
            signal = math.nan
        if need_signal and not math.isfinite(signal):
            raise err("regression needs a numeric signalValue in column 7 (narrowPeak)",
                      fix="give narrowPeak files, or set the dataset's 'task' to "
                          "binary/multitask")
        name = f[3] if len(f) >= 4 and f[3] not in ("", ".") else f"{chrom}:{start}-{end}"
        rows.append((chrom, start, end, name, summit, signal, no))
    return pd.DataFrame(rows, columns=["chrom", "start", "end", "name", "summit", "signal",
                                       "line"])


# --------------------------------------------------------------------------------------
# windows


def peak_windows(per_task: dict[str, pd.DataFrame], chrom_rank: dict[str, int], width: int,
                 merge_distance: int) -> tuple[pd.DataFrame, int]:
    """Windows of ``width`` bp centred on the summits of all tasks' peaks.

    Summits within ``merge_distance`` bp (of any task) become one window, centred on the
    strongest. Returns the windows (chrom, start, end, name, summit, signal, sources: the
    tasks whose summit it is) and the number of peaks merged away.
    """
    pk = pd.concat([df.assign(task=t) for t, df in per_task.items()], ignore_index=True)
    pk["signal_sort"] = pk["signal"].fillna(0)
    pk["rank"] = pk["chrom"].map(chrom_rank)
    pk = pk.sort_values(["rank", "summit", "signal_sort"], ascending=[True, True, False],
                        kind="stable").reset_index(drop=True)
    new_cluster = (pk["chrom"] != pk["chrom"].shift()) | (pk["summit"].diff() > merge_distance)
    pk["cluster"] = new_cluster.cumsum()
    best = pk.sort_values(["cluster", "signal_sort"], ascending=[True, False], kind="stable")
    reps = best.drop_duplicates("cluster").sort_values(["rank", "summit"]).reset_index(drop=True)
    reps["sources"] = reps["cluster"].map(pk.groupby("cluster")["task"].agg(
        lambda s: sorted(set(s))))
    win = pd.DataFrame({"chrom": reps["chrom"], "start": reps["summit"] - width // 2})
    win["end"] = win["start"] + width
    win["name"] = reps["name"].to_numpy()
    dup = win["name"].duplicated(keep=False)
    win.loc[dup, "name"] = win.loc[dup, "name"] + "_" + win.index[dup].astype(str)
    win["summit"] = reps["summit"].to_numpy()
    win["signal"] = reps["signal_sort"].to_numpy()
    win["sources"] = reps["sources"].to_numpy()
    return win, len(pk) - len(reps)


def filter_windows(win: pd.DataFrame, lengths: dict[str, int], blacklist: pd.DataFrame,
                   genome: str | Path, max_n_fraction: float, chunk_size: int
                   ) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
    """Drop windows off a chromosome end, overlapping the blacklist, or with too many N.

    Returns the kept windows, their GC fractions and the count dropped for each reason.
    """
    dropped = {}
    ok = (win["start"] >= 0) & (win["end"] <= win["chrom"].map(lengths))
    dropped["off_chromosome_end"] = int((~ok).sum())
    win = win[ok].reset_index(drop=True)
    bl = _overlaps(win, blacklist)
    dropped["blacklist"] = int(bl.sum())
    win = win[~bl].reset_index(drop=True)
    gc, nfrac = window_stats(genome, win, chunk_size)
    too_n = nfrac > max_n_fraction
    dropped["too_many_n"] = int(too_n.sum())
    return win[~too_n].reset_index(drop=True), gc[~too_n], dropped


# --------------------------------------------------------------------------------------
# split units, folds and splits


def units_needed(folds: int) -> int:
    """Units that must carry peaks for ``folds`` folds (3 splits for one fold)."""
    return 3 if folds == 1 else 2 * folds


@dataclass
class SplitUnits:
    """How windows are grouped for splitting: whole chromosomes or fixed-size blocks."""

    kind: str  # chromosome or block
    block_size: int = 0
    lengths: dict[str, int] = field(default_factory=dict)
    reason: str = ""

    def of(self, chrom: pd.Series, center: pd.Series | np.ndarray) -> np.ndarray:
        """The unit of each window (by its centre)."""
        chrom = np.asarray(chrom, dtype=object)
        if self.kind == "chromosome":
            return chrom
        b = np.asarray(center, dtype=np.int64) // self.block_size
        ends = np.minimum((b + 1) * self.block_size,
                          np.array([self.lengths[c] for c in chrom], dtype=np.int64))
        return np.array([f"{c}:{s}-{e}" for c, s, e in zip(chrom, b * self.block_size, ends,
                                                          strict=True)], dtype=object)


def split_units(win: pd.DataFrame, lengths: dict[str, int], folds: int, unit: str = "auto",
                block_size: int | None = None) -> SplitUnits:
    """Choose the split units.

    ``auto`` keeps whole chromosomes when at least :func:`units_needed` of them carry peaks,
    and otherwise cuts every chromosome into blocks (about ``4 x`` that many over the genome,
    at least 100 kb each), so that a bacterial genome or an assembly of a few chromosomes
    still gets held-out test regions. Windows belong to the block of their centre; only
    windows within one window width of a block edge can leak across it.
    """
    n_with = win["chrom"].nunique()
    need = units_needed(folds)
    if unit == "chromosome" or (unit == "auto" and n_with >= need):
        return SplitUnits("chromosome", reason=f"{n_with} chromosomes carry peaks")
    total = sum(lengths.values())
    size = int(block_size or max(100_000, round(total / (4 * need), -4)))
    reason = (f"{n_with} chromosome(s) carry peaks and {folds} fold(s) need {need} units, so "
              f"chromosomes are cut into blocks of {size:,} bp" if unit == "auto"
              else f"blocks of {size:,} bp (data: split: unit)")
    return SplitUnits("block", size, dict(lengths), reason)


def assign_splits(
    counts: dict[str, int],
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    valid: list[str] | None = None,
    test: list[str] | None = None,
    key: str = "datasets",
) -> dict[str, str]:
    """Unit -> split for a single fold. Given lists win; the rest is assigned greedily.

    Units go in order of decreasing count (ties by name) to the split furthest below its
    target count, except that the last ones go to valid/test while those are still empty;
    units without positives go to train. Deterministic, and works for any names.
    """
    given = {c: "valid" for c in valid or []} | {c: "test" for c in test or []}
    both = set(valid or []) & set(test or [])
    if both:
        raise InputError(f"chromosomes {sorted(both)} are in both valid and test lists",
                         key=f"{key}: valid_chromosomes", fix="give each chromosome one split")
    for c in given:
        if c not in counts:
            raise InputError(
                f"chromosome '{c}' has no kept regions (or is not in the genome)",
                key=f"{key}: {given[c]}_chromosomes",
                fix=f"use chromosomes with peaks: {', '.join(list(counts)[:8])}")
    total = sum(counts.values())
    target = {"train": 1 - valid_fraction - test_fraction, "valid": valid_fraction,
              "test": test_fraction}
    have = Counter({s: 0 for s in SPLITS})
    for c, s in given.items():
        have[s] += counts[c]
    auto = [s for s in SPLITS if s == "train" or (s == "valid" and valid is None)
            or (s == "test" and test is None)]
    out = dict(given)
    rest = [c for c in sorted(counts, key=lambda c: (-counts[c], c))
            if c not in given and counts[c] > 0]
    out |= {c: "train" for c in counts if c not in given and counts[c] == 0}
    for k, c in enumerate(rest):
        unfilled = [s for s in auto if have[s] == 0 and s != "train"]
        if unfilled and len(rest) - k <= len(unfilled):
            s = unfilled[0]  # the last units go to splits that are still empty
        else:
            # the split furthest below its target; ties prefer test, then valid, then train
            s = max(auto, key=lambda s: (target[s] * total - have[s],
                                         ("train", "valid", "test").index(s)))
        out[c] = s
        have[s] += counts[c]
    empty = [s for s in SPLITS if have[s] == 0]
    if empty:
        raise InputError(
            f"split(s) {empty} got no unit with peaks ({len(rest) + len(given)} "
            "units carry peaks; a split needs at least 3)",
            key=f"{key}: valid_chromosomes",
            fix="use a genome with more chromosomes carrying peaks, set "
                "data: split: unit: block, or set valid_chromosomes and test_chromosomes")
    return out


def assign_folds(counts: dict[str, int], folds: int,
                 valid_fraction: float = 0.15) -> list[dict[str, str]]:
    """Unit -> split for each of ``folds`` folds.

    Units with peaks are dealt into ``folds`` test groups of about equal positive counts
    (largest first, each to the lightest group; ties by name). In fold k the test split is
    group k, the validation split takes units from the next groups (k+1, k+2, ...) until it
    holds ``valid_fraction`` of the positives, and the rest is train. Units without peaks are
    train in every fold.
    """
    order = sorted((u for u in counts if counts[u] > 0), key=lambda u: (-counts[u], u))
    if len(order) < folds + 1:
        raise InputError(
            f"{folds} folds need at least {folds + 1} units with peaks, found {len(order)}",
            key="data: split: folds",
            fix="use fewer folds, or data: split: unit: block to cut chromosomes into blocks")
    group: dict[str, int] = {}
    load = [0] * folds
    for u in order:
        g = min(range(folds), key=lambda i: (load[i], i))
        group[u] = g
        load[g] += counts[u]
    total = sum(load)
    out = []
    for k in range(folds):
        split = {u: "train" for u in counts}
        split |= {u: "test" for u in order if group[u] == k}
        others = sorted((u for u in order if group[u] != k),
                        key=lambda u: ((group[u] - k - 1) % folds, -counts[u], u))
        have = 0
        for u in others:
            if have >= valid_fraction * total:
                break
            split[u] = "valid"
            have += counts[u]
        if not any(s == "train" and counts[u] > 0 for u, s in split.items()):
            split[others[-1]] = "train"
        out.append(split)
    return out


# --------------------------------------------------------------------------------------
# intervals (bedtools via pybedtools)


def _bt(df: pd.DataFrame):
    import pybedtools

    return pybedtools.BedTool.from_dataframe(df.reset_index(drop=True))


def _overlaps(windows: pd.DataFrame, intervals: pd.DataFrame) -> np.ndarray:
    """Boolean ``(N,)``: does each window overlap any interval (>= 1 bp)?"""
    if intervals.empty or windows.empty:
        return np.zeros(len(windows), dtype=bool)
    w = windows[["chrom", "start", "end"]].assign(i=np.arange(len(windows)))
    hit = _bt(w).intersect(_bt(intervals[["chrom", "start", "end"]]), u=True)
    idx = [int(f.fields[3]) for f in hit]
    out = np.zeros(len(windows), dtype=bool)
    out[idx] = True
    return out


def _label_overlaps(windows: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """Pairs (window row, peak signal) where they overlap by >= 50% of either."""
    if windows.empty or peaks.empty:
        return pd.DataFrame({"i": [], "signal": []})
    w = windows[["chrom", "start", "end"]].assign(i=np.arange(len(windows)))
    p = peaks[["chrom", "start", "end"]].assign(signal=peaks["signal"].fillna(0).to_numpy())
    hits = _bt(w).intersect(_bt(p), wa=True, wb=True, f=0.5, F=0.5, e=True)
    rows = [(int(h.fields[3]), float(h.fields[7])) for h in hits]
    return pd.DataFrame(rows, columns=["i", "signal"])


def _drop_overlapping(df: pd.DataFrame) -> pd.DataFrame:
    """Keep the first window of each run of mutually overlapping windows (sorted input)."""
    keep, last_chrom, last_end = [], None, -1
    for i, (c, s, e) in enumerate(zip(df["chrom"], df["start"], df["end"], strict=True)):
        if c != last_chrom or s >= last_end:
            keep.append(i)
            last_chrom, last_end = c, e
    return df.iloc[keep]


# --------------------------------------------------------------------------------------
# negatives: a table of strategies


@dataclass
class Background:
    """What every negative strategy needs: the genome, the positives and the settings."""

    genome: str | Path
    lengths: dict[str, int]  # every chromosome of the FASTA
    kept: dict[str, int]  # chromosomes negatives may come from
    chrom_rank: dict[str, int]
    positives: pd.DataFrame  # the kept windows
    pos_gc: np.ndarray
    peaks: pd.DataFrame  # every peak interval (chrom, start, end)
    blacklist: pd.DataFrame
    width: int
    settings: dict  # the data: negatives section
    max_n_fraction: float
    chunk_size: int
    rng: np.random.Generator
    tmpdir: Path

    def exclusion(self, margin: int) -> pd.DataFrame:
        """Peaks and positive windows widened by ``margin``, plus the blacklist."""
        ex = pd.concat([self.peaks[["chrom", "start", "end"]],
                        self.positives[["chrom", "start", "end"]]])
        ex = ex.assign(start=(ex["start"] - margin).clip(lower=0), end=ex["end"] + margin)
        return pd.concat([ex, self.blacklist[["chrom", "start", "end"]]])

    def usable(self, cand: pd.DataFrame, exclude: pd.DataFrame) -> tuple[pd.DataFrame,
                                                                          np.ndarray]:
        """Candidates inside kept chromosomes, clear of ``exclude``, not overlapping each
        other, with few N; returns them (sorted) and their GC."""
        cand = cand[(cand["start"] >= 0) & cand["chrom"].isin(list(self.kept))]
        cand = cand[cand["end"] <= cand["chrom"].map(self.lengths)].reset_index(drop=True)
        cand = cand[~_overlaps(cand, exclude)].reset_index(drop=True)
        cand = cand.assign(rank=cand["chrom"].map(self.chrom_rank))
        cand = _drop_overlapping(cand.sort_values(["rank", "start"], kind="stable"))
        cand = cand.drop(columns="rank").reset_index(drop=True)
        cgc, cn = window_stats(self.genome, cand, self.chunk_size)
        good = cn <= self.max_n_fraction
        return cand[good].reset_index(drop=True), cgc[good]


@dataclass
class Negatives:
    """Negatives made by one strategy: windows (chrom, start, end, kind), their GC, and
    what the strategy wants recorded in summary.tsv."""

    windows: pd.DataFrame
    gc: np.ndarray
    notes: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.windows)


def _allowed_space(lengths: dict[str, int], exclude: pd.DataFrame, width: int,
                   tmpdir: Path) -> pd.DataFrame:
    """Intervals of ``lengths``' chromosomes outside ``exclude`` that can hold a window
    (bedtools sort | merge | complement); empty when nothing is left."""
    genome_file = tmpdir / "genome.sizes"
    genome_file.write_text("".join(f"{c}\t{n}\n" for c, n in lengths.items()))
    excl = exclude[exclude["chrom"].isin(list(lengths))][["chrom", "start", "end"]]
    if excl.empty:
        free = pd.DataFrame({"chrom": list(lengths), "start": 0, "end": list(lengths.values())})
    else:
        bt = _bt(excl).sort(g=str(genome_file)).merge().complement(g=str(genome_file))
        rows = [(f.chrom, f.start, f.end) for f in bt]
        free = pd.DataFrame(rows, columns=["chrom", "start", "end"])
    free = free.astype({"chrom": str, "start": np.int64, "end": np.int64})
    return free[free["end"] - free["start"] >= width].reset_index(drop=True)


def _random_windows(free: pd.DataFrame, n: int, width: int,
                    rng: np.random.Generator) -> pd.DataFrame:
    """``n`` windows placed uniformly at random inside the ``free`` intervals."""
    if free.empty or n <= 0:
        return pd.DataFrame({"chrom": pd.Series(dtype=str), "start": pd.Series(dtype=np.int64),
                             "end": pd.Series(dtype=np.int64)})
    room = (free["end"] - free["start"] - width + 1).to_numpy(dtype=np.float64)
    which = rng.choice(len(free), size=n, p=room / room.sum())
    start = free["start"].to_numpy()[which] + np.floor(rng.random(n) * room[which]).astype(
        np.int64)
    return pd.DataFrame({"chrom": free["chrom"].to_numpy()[which], "start": start,
                         "end": start + width})


def _gc_edges(pos_gc: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges at quantiles of the positives' GC: narrow bins where positives are dense."""
    inner = np.quantile(pos_gc, np.linspace(0, 1, bins + 1)[1:-1]) if len(pos_gc) else []
    return np.unique(np.concatenate([[0.0], inner, [1.0 + 1e-9]]))


def _bin_deficit(pos_gc: np.ndarray, pool_gc: np.ndarray, n_wanted: int, bins: int) -> int:
    edges = _gc_edges(pos_gc, bins)
    nb = len(edges) - 1
    share = np.bincount(np.clip(np.digitize(pos_gc, edges) - 1, 0, nb - 1), minlength=nb)
    want = np.ceil(share / max(len(pos_gc), 1) * n_wanted)
    have = np.bincount(np.clip(np.digitize(pool_gc, edges) - 1, 0, nb - 1), minlength=nb)
    return int(np.maximum(want - have, 0).sum())


def _match_gc(pos_gc: np.ndarray, pool_gc: np.ndarray, n_wanted: int, bins: int,
              rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Indices into the pool whose GC histogram follows the positives'; and the shortfall.

    Bins are quantiles of the positives' GC. A bin short of candidates borrows from its
    nearest neighbours; only what no bin can give counts as shortfall.
    """
    edges = _gc_edges(pos_gc, bins)
    bins = len(edges) - 1
    pb = np.clip(np.digitize(pos_gc, edges) - 1, 0, bins - 1)
    qb = np.clip(np.digitize(pool_gc, edges) - 1, 0, bins - 1)
    share = np.bincount(pb, minlength=bins) / max(len(pos_gc), 1) * n_wanted
    want = np.floor(share).astype(int)
    rem = n_wanted - want.sum()
    if rem > 0:
        want[np.argsort(-(share - want), kind="stable")[:rem]] += 1
    avail = {b: list(rng.permutation(np.flatnonzero(qb == b))) for b in range(bins)}
    chosen = []
    for b in range(bins):
        take = min(want[b], len(avail[b]))
        chosen += [avail[b].pop() for _ in range(take)]
        want[b] -= take
    deficit = 0
    for b in range(bins):
        # borrow from the nearest bins that still have candidates
        for d in range(1, bins):
            for nb in (b - d, b + d):
                while want[b] and 0 <= nb < bins and avail[nb]:
                    chosen.append(avail[nb].pop())
                    want[b] -= 1
            if not want[b]:
                break
        deficit += want[b]
    return np.sort(np.array(chosen, dtype=np.int64)), int(deficit)


def _gc_matched_at(bg: Background, n: int, margin: int) -> Negatives:
    """GC-matched negatives keeping ``margin`` bp from every peak (may fall short)."""
    exclude = bg.exclusion(margin)
    free = _allowed_space(bg.kept, exclude, bg.width, bg.tmpdir)
    bins = int(bg.settings["gc_bins"])
    cand = pd.DataFrame({"chrom": pd.Series(dtype=str), "start": pd.Series(dtype=np.int64),
                         "end": pd.Series(dtype=np.int64)})
    cgc = np.array([])
    rounds = 0
    while rounds < POOL_ROUNDS and not free.empty:
        rounds += 1
        more = _random_windows(free, max(POOL_FACTOR * n, 100), bg.width, bg.rng)
        if len(cand):
            more = more[~_overlaps(more, cand)]
        more, mgc = bg.usable(more, exclude)
        cand = pd.concat([cand, more], ignore_index=True)
        cgc = np.concatenate([cgc, mgc])
        if _bin_deficit(bg.pos_gc, cgc, n, bins) == 0:
            break
    pick, short = _match_gc(bg.pos_gc, cgc, min(n, len(cand)), bins, bg.rng)
    log.info("gc_matched (margin %d bp): %d candidate windows in %d round(s), %d picked",
             margin, len(cand), rounds, len(pick))
    wins = cand.iloc[pick][["chrom", "start", "end"]].assign(kind="background")
    return Negatives(wins.reset_index(drop=True), cgc[pick], {"negatives_margin": margin})


def gc_matched_negatives(bg: Background, n: int) -> Negatives:
    """Random genomic windows clear of every peak by ``margin``, matched to the positives'
    GC histogram. Where the genome is too full of peaks, the margin is halved until the
    negatives fit (down to 0: merely not overlapping a peak)."""
    margin = int(bg.settings["margin"])
    while True:
        neg = _gc_matched_at(bg, n, margin)
        if neg.n >= n or margin == 0:
            if margin != int(bg.settings["margin"]):
                log.warning("too little background %d bp from peaks: the margin was lowered "
                            "to %d bp", int(bg.settings["margin"]), margin)
            return neg
        margin //= 2


def flank_negatives(bg: Background, n: int) -> Negatives:
    """Windows shifted by multiples of ``flank_shift`` to either side of each peak."""
    shift = int(bg.settings["flank_shift"])
    reps = math.ceil(bg.settings["ratio"])
    pos = bg.positives[["chrom", "start", "end"]]
    cand = pd.concat([pos.assign(start=pos["start"] + sgn * k * shift,
                                 end=pos["end"] + sgn * k * shift)
                      for k in range(1, reps + 1) for sgn in (-1, 1)], ignore_index=True)
    cand, cgc = bg.usable(cand, bg.exclusion(int(bg.settings["margin"])))
    pick = np.sort(bg.rng.choice(len(cand), size=min(n, len(cand)), replace=False))
    wins = cand.iloc[pick][["chrom", "start", "end"]].assign(kind="background")
    return Negatives(wins.reset_index(drop=True), cgc[pick])


def shuffle_negatives(bg: Background, n: int) -> Negatives:
    """Dinucleotide-shuffled copies of positives (rows with kind ``shuffle`` at the
    positive's coordinates; extraction shuffles them)."""
    reps = max(1, math.ceil(n / max(len(bg.positives), 1)))
    idx = np.tile(np.arange(len(bg.positives)), reps)
    pick = np.sort(bg.rng.choice(len(idx), size=min(n, len(idx)), replace=False))
    src = bg.positives.iloc[idx[pick]]
    wins = src[["chrom", "start", "end"]].assign(kind="shuffle").reset_index(drop=True)
    return Negatives(wins, bg.pos_gc[idx[pick]])


NEGATIVE_STRATEGIES: dict[str, Callable[[Background, int], Negatives]] = {
    "gc_matched": gc_matched_negatives,
    "flanks": flank_negatives,
    "dinuc_shuffle": shuffle_negatives,
}


def make_negatives(bg: Background, n: int, strategy: str, fallback: bool,
                   key: str) -> Negatives:
    """Negatives from ``strategy``; a shortfall is filled with dinucleotide shuffles when
    ``fallback`` is true, and is an InputError otherwise."""
    neg = NEGATIVE_STRATEGIES[strategy](bg, n)
    short = n - neg.n
    neg.notes["negatives_strategy"] = strategy
    neg.notes["negatives_shortfall"] = max(short, 0)
    neg.notes["negatives_fallback_shuffles"] = 0
    if short <= 0:
        return neg
    if not fallback:
        raise InputError(
            f"the genome has room for only {neg.n} of {n} {strategy} negatives (the peaks "
            "leave too little background)", key=f"{key}: negatives",
            fix="set data: negatives: fallback: true (fills the rest with dinucleotide "
                "shuffles), strategy: dinuc_shuffle, or a lower ratio or margin")
    extra = shuffle_negatives(bg, short)
    log.warning("%d of %d negatives could not be found by %s: the rest are dinucleotide "
                "shuffles of positives (recorded as negatives_fallback_shuffles)",
                short, n, strategy)
    neg.notes.update(negatives_shortfall=0, negatives_fallback_shuffles=extra.n)
    return Negatives(pd.concat([neg.windows, extra.windows], ignore_index=True),
                     np.concatenate([neg.gc, extra.gc]), neg.notes)


# --------------------------------------------------------------------------------------
# labels


def window_labels(win: pd.DataFrame, per_task: dict[str, pd.DataFrame], tasks: list[str],
                  task_type: str) -> pd.DataFrame:
    """Labels of the positive windows (one column per task; see the module docstring)."""
    n = len(win)
    mat = np.zeros((n, len(tasks)), dtype=np.float64)
    strength = np.zeros((n, len(tasks)), dtype=np.float64)
    for j, t in enumerate(tasks):
        hits = _label_overlaps(win, per_task[t])
        if len(hits):
            g = hits.groupby("i")["signal"].max()
            mat[g.index.to_numpy(), j] = 1
            strength[g.index.to_numpy(), j] = g.to_numpy()
        own = np.array([t in s for s in win["sources"]])
        mat[own, j] = 1
        strength[own, j] = np.maximum(strength[own, j], win["signal"].to_numpy()[own])
    if task_type == "regression":
        vals = np.where(mat > 0, np.log1p(np.maximum(strength, 0)), 0.0)
        return pd.DataFrame(vals, columns=tasks)
    if task_type == "multiclass":
        one = np.zeros((n, len(tasks) + 1))
        # the class is the task the window is centred on (the strongest, if merged)
        src = [tasks.index(s[0]) if len(s) == 1 else
               max((tasks.index(t) for t in s), key=lambda j, i=i: strength[i, j])
               for i, s in enumerate(win["sources"])]
        one[np.arange(n), src] = 1
        return pd.DataFrame(one, columns=tasks + ["background"])
    return pd.DataFrame(mat, columns=tasks)


# --------------------------------------------------------------------------------------
# the stage


@dataclass
class Inputs:
    """The validated inputs of one dataset."""

    lengths: dict[str, int]  # every chromosome of the FASTA, in FASTA order
    kept: dict[str, int]  # chromosomes left after chromosomes / exclude_chromosomes
    per_task: dict[str, pd.DataFrame]  # read_bed of each task's peak file
    blacklist: pd.DataFrame


def read_inputs(genome: str | Path, peaks: dict[str, str | Path], ds: dict, task_type: str,
                key: str) -> Inputs:
    """Step 1: validate the genome, every peak file and the blacklist before any long work."""
    lengths = chromosome_lengths(genome)
    keep = ds.get("chromosomes")
    if keep:
        unknown = [c for c in keep if c not in lengths]
        if unknown:
            raise InputError(f"chromosomes {unknown} are not in the genome FASTA",
                             key=f"{key}: chromosomes", fix=_chr_hint(unknown[0], set(lengths)))
    skip = set(ds.get("exclude_chromosomes") or [])
    if keep:
        skip |= set(lengths) - set(keep)
    per_task = {t: read_bed(path, lengths, skip_chromosomes=skip,
                            need_signal=task_type == "regression") for t, path in peaks.items()}
    blacklist = pd.DataFrame(columns=["chrom", "start", "end"])
    if ds.get("blacklist"):
        blacklist = read_bed(ds["blacklist"], lengths, allow_unknown=True)[
            ["chrom", "start", "end"]]
    if sum(len(d) for d in per_task.values()) == 0:
        raise InputError(
            "no peaks left after skipping header lines and excluded chromosomes",
            path=", ".join(str(p) for p in peaks.values()),
            fix="check the file has BED lines and that 'chromosomes'/'exclude_chromosomes' "
                "do not remove all of them")
    return Inputs(lengths, {c: n for c, n in lengths.items() if c not in skip}, per_task,
                  blacklist)


MIN_TRAIN_SHARE = 0.5  # auto units: blocks when whole chromosomes leave less for training


def _plan(counts: dict[str, int], folds: int, split_cfg: dict, given, key: str
          ) -> list[dict[str, str]]:
    if folds == 1:
        return [assign_splits(counts, float(split_cfg["valid_fraction"]),
                              float(split_cfg["test_fraction"]), given[0], given[1], key=key)]
    return assign_folds(counts, folds, float(split_cfg["valid_fraction"]))


def _train_share(plan: list[dict[str, str]], counts: dict[str, int]) -> float:
    total = sum(counts.values())
    return min(sum(counts[u] for u, s in fold.items() if s == "train") / total for fold in plan)


def plan_splits(win: pd.DataFrame, kept: dict[str, int], ds: dict, split_cfg: dict,
                key: str) -> tuple[SplitUnits, np.ndarray, list[dict[str, str]]]:
    """Step 3: the units, each window's unit, and unit -> split for every fold.

    With ``unit: auto``, whole chromosomes are kept together unless there are too few to
    split (:func:`split_units`) or their sizes would leave less than half of the positives
    for training in some fold (4 chromosomes and 2 folds: test 2, valid 1, train 1); then
    chromosomes are cut into blocks.
    """
    folds = int(split_cfg["folds"])
    given = ds.get("valid_chromosomes"), ds.get("test_chromosomes")
    if folds > 1 and any(given):
        raise InputError(f"valid_chromosomes/test_chromosomes choose a single split, but "
                         f"data: split: folds is {folds}", key=f"{key}: test_chromosomes",
                         fix="remove them (every fold then gets its own test chromosomes), "
                             "or set data: split: folds: 1")
    unit_kind = "chromosome" if any(given) else split_cfg["unit"]
    units = split_units(win, kept, folds, unit_kind, split_cfg["block_size"])
    win_unit = units.of(win["chrom"], win["summit"])
    counts = dict(Counter(win_unit))
    plan = _plan(counts, folds, split_cfg, given, key)
    share = _train_share(plan, counts)
    if unit_kind == "auto" and units.kind == "chromosome" and share < MIN_TRAIN_SHARE:
        units = split_units(win, kept, folds, "block", split_cfg["block_size"])
        units.reason = (f"whole chromosomes would leave only {share:.0%} of the positives for "
                        f"training in a fold, so chromosomes are cut into blocks of "
                        f"{units.block_size:,} bp")
        win_unit = units.of(win["chrom"], win["summit"])
        counts = dict(Counter(win_unit))
        plan = _plan(counts, folds, split_cfg, given, key)
    log.info("split units: %s (%s)", units.kind, units.reason)
    return units, win_unit, plan


def assemble(win: pd.DataFrame, gc: np.ndarray, win_unit: np.ndarray, labels: pd.DataFrame,
             neg: Negatives, units: SplitUnits, plan: list[dict[str, str]],
             chrom_rank: dict[str, int], task_type: str) -> pd.DataFrame:
    """Step 5: positives and negatives in one table in genome order, with their units, splits
    and labels (plus ``_gc``, ``_rank`` and ``_kind`` for the summary)."""
    label_cols = list(labels.columns)
    pos = win[["chrom", "start", "end", "name"]].assign(kind="peak", unit=win_unit)
    pos = pd.concat([pos.reset_index(drop=True), labels], axis=1)
    negs = neg.windows.reset_index(drop=True)
    negs["name"] = [f"{'shuffle' if k == 'shuffle' else 'neg'}{i + 1}"
                    for i, k in enumerate(negs["kind"])]
    negs["unit"] = units.of(negs["chrom"], (negs["start"] + negs["end"]) // 2)
    neg_labels = pd.DataFrame(0.0, index=negs.index, columns=label_cols)
    if task_type == "multiclass":
        neg_labels["background"] = 1.0
    regions = pd.concat([pos, pd.concat([negs, neg_labels], axis=1)], ignore_index=True)
    regions["_gc"] = np.concatenate([gc, neg.gc])
    for k, split_of in enumerate(plan):
        regions[f"split_{k}"] = regions["unit"].map(split_of).fillna("train")
    regions["_rank"] = regions["chrom"].map(chrom_rank)
    regions["_kind"] = regions["kind"].map({k: i for i, k in enumerate(KINDS)})
    return regions.sort_values(["_rank", "start", "_kind"], kind="stable").reset_index(
        drop=True)


def prepare_regions(
    genome: str | Path,
    peaks: dict[str, str | Path],
    regions_out: str | Path,
    summary_out: str | Path,
    summary_html: str | Path | None = None,
    gc_png: str | Path | None = None,
    *,
    dataset: str = "dataset",
    dataset_config: dict | None = None,
    data_config: dict | None = None,
) -> pd.DataFrame:
    """Run the region stage for one dataset and write ``regions.tsv`` and the summary.

    ``peaks`` maps task name -> peak file. ``dataset_config`` is ``datasets: NAME`` and
    ``data_config`` the ``data`` section of the config (missing keys take the schema
    defaults). Returns the regions table (see the module docstring).
    """
    # Over 80 lines on purpose: the stage's steps in order, each one call to its own function,
    # so that the whole stage reads top to bottom here.
    import tempfile

    import pybedtools

    from peak2motif.config import with_defaults

    ds = dict(dataset_config or {})
    cfg = with_defaults("data", data_config)
    neg_cfg = cfg["negatives"]
    key = f"datasets: {dataset}"
    task_type = resolve_task_type(ds.get("task", "auto"), len(peaks))
    if task_type == "binary" and len(peaks) != 1:
        raise InputError(f"task 'binary' needs one peak file, got {len(peaks)}",
                         key=f"{key}: task", fix="use multitask or multiclass, or one file")
    inp = read_inputs(genome, peaks, ds, task_type, key)
    stats: dict[str, float | str] = {f"peaks_read_{t}": len(d) for t, d in inp.per_task.items()}
    chrom_rank = {c: i for i, c in enumerate(inp.lengths)}
    win, stats["dropped_duplicate"] = peak_windows(inp.per_task, chrom_rank,
                                                   int(cfg["sequence_length"]),
                                                   int(cfg["merge_distance"]))
    win, gc, dropped = filter_windows(win, inp.lengths, inp.blacklist, genome,
                                      float(cfg["max_n_fraction"]), int(cfg["chunk_size"]))
    stats |= {f"dropped_{k}": v for k, v in dropped.items()}
    for reason in ("duplicate", "off_chromosome_end", "blacklist", "too_many_n"):
        log.info("dropped %d peaks: %s", stats[f"dropped_{reason}"], reason.replace("_", " "))
    if win.empty:
        raise InputError(
            "no windows left after filtering ("
            + ", ".join(f"{k}={v}" for k, v in stats.items() if k.startswith("dropped")) + ")",
            path=", ".join(str(p) for p in peaks.values()),
            fix="check that peaks and genome are the same assembly, and loosen "
                "data: max_n_fraction or the blacklist")
    units, win_unit, plan = plan_splits(win, inp.kept, ds, cfg["split"], key)
    peaks_all = pd.concat([d[["chrom", "start", "end"]] for d in inp.per_task.values()])
    with tempfile.TemporaryDirectory() as tmpd:
        try:
            bg = Background(
                genome=genome, lengths=inp.lengths, kept=inp.kept, chrom_rank=chrom_rank,
                positives=win, pos_gc=gc, peaks=peaks_all, blacklist=inp.blacklist,
                width=int(cfg["sequence_length"]), settings=neg_cfg,
                max_n_fraction=float(cfg["max_n_fraction"]), chunk_size=int(cfg["chunk_size"]),
                rng=np.random.default_rng(int(cfg["seed"])), tmpdir=Path(tmpd))
            neg = make_negatives(bg, int(round(float(neg_cfg["ratio"]) * len(win))),
                                 neg_cfg["strategy"], bool(neg_cfg["fallback"]), "data")
            labels = window_labels(win, inp.per_task, list(peaks), task_type)
        finally:
            pybedtools.cleanup(remove_all=False)
    stats |= neg.notes | {"folds": len(plan), "split_unit": units.kind,
                          "split_unit_reason": units.reason,
                          "units_with_peaks": len(set(win_unit))}
    regions = assemble(win, gc, win_unit, labels, neg, units, plan, chrom_rank, task_type)
    out = regions[["chrom", "start", "end", "name", "kind", "unit",
                   *[f"split_{k}" for k in range(len(plan))], *labels.columns]]
    summary = _summary(regions, stats, plan, task_type, list(labels.columns))
    with atomic_output(regions_out) as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_output(summary_out) as tmp:
        summary.to_csv(tmp, sep="\t", index=False)
    if summary_html:
        _write_html(summary, out, summary_html, dataset,
                    regions["_gc"].to_numpy(dtype=float), (regions["kind"] == "peak").to_numpy())
    if gc_png:
        _plot_gc(regions, gc_png, neg_cfg["strategy"])
    log.info("%d positives, %d negatives (%s)", len(win), neg.n, neg_cfg["strategy"])
    return out


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the two ECDFs)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def _unit_list(units: list[str], most: int = 12) -> str:
    return ",".join(units) if len(units) <= most else f"{len(units)} units"


def _summary(regions, stats, plan, task_type, label_cols) -> pd.DataFrame:
    pos = (regions["kind"] == "peak").to_numpy()
    rows = list(stats.items())
    rows += [("task_type", task_type), ("tasks", ",".join(label_cols)),
             ("positives", int(pos.sum())), ("negatives", int((~pos).sum())),
             ("sequence_length", int((regions["end"] - regions["start"]).iloc[0]))]
    for k, split_of in enumerate(plan):
        tag = "" if k == 0 else f"_fold{k}"
        for s in SPLITS:
            in_s = regions[f"split_{k}"].to_numpy() == s
            rows += [(f"positives_{s}{tag}", int((pos & in_s).sum())),
                     (f"negatives_{s}{tag}", int((~pos & in_s).sum())),
                     (f"units_{s}{tag}", _unit_list([u for u, v in split_of.items()
                                                     if v == s]))]
    gc = regions["_gc"].to_numpy(dtype=float)
    rows += [("gc_mean_positives", round(float(gc[pos].mean()), 4)),
             ("gc_mean_negatives", round(float(gc[~pos].mean()), 4) if (~pos).any() else ""),
             ("gc_ks_statistic", round(_ks(gc[pos], gc[~pos]), 4))]
    return pd.DataFrame(rows, columns=["metric", "value"])


# GC-only auROC bands of the data page's verdict. The tiny test config's gc_matched negatives
# reach 0.538 (KS 0.124); peaks 0.05 richer in GC than their background (sd 0.05) reach 0.76
# (tests/test_presentation.py), a gap a CNN learns at once.
GC_AUROC_GOOD = 0.05
GC_AUROC_FAIR = 0.1


def gc_auroc(gc: np.ndarray, positive: np.ndarray) -> float:
    """How well GC content alone ranks positives above negatives (Mann-Whitney auROC; 0.5:
    not at all). NaN without negatives."""
    pos, neg = gc[positive], np.sort(gc[~positive])
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    tied = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (len(pos) * len(neg)))


def gc_verdict(auroc: float, ks: float) -> dict:
    """The data page's "what good looks like" verdict on the GC match of the negatives."""
    if np.isnan(auroc):
        return dict(level="none", label="No negatives:",
                    text="nothing to compare the positives' GC with.")
    gap = abs(auroc - 0.5)
    text = (f"GC content alone separates positives from negatives with auROC {auroc:.3f} "
            f"(0.5: not at all); Kolmogorov-Smirnov distance {ks:.3f}. ")
    if gap <= GC_AUROC_GOOD:
        return dict(level="good", label="GC matched.",
                    text=text + f"Within {GC_AUROC_GOOD} of 0.5: the model cannot win by GC.")
    if gap <= GC_AUROC_FAIR:
        return dict(level="fair", label="GC roughly matched.",
                    text=text + "A model could gain a little from GC alone; compare its test "
                    "auROC with this one.")
    return dict(level="bad", label="GC differs.",
                text=text + "A model can learn GC instead of motifs: use the gc_matched or "
                "shuffled negatives strategy (data: negatives: strategy).")


def _write_html(summary: pd.DataFrame, regions: pd.DataFrame, path, dataset: str,
                gc: np.ndarray, positive: np.ndarray) -> None:
    from peak2motif.presentation import table, write_page

    values = dict(zip(summary["metric"], summary["value"], strict=True))
    ks = float(values.get("gc_ks_statistic", "nan") or "nan")
    write_page(path, "data.html", title=f"{dataset}: data", dataset=dataset,
               gc_verdict=gc_verdict(gc_auroc(gc, positive), ks),
               summary=table(summary.assign(metric=summary["metric"].str.replace("_", " ")),
                             headers={"metric": "what", "value": "value"}),
               regions=table(regions.head(20)))


def _plot_gc(regions: pd.DataFrame, path, strategy: str) -> None:
    from peak2motif.presentation import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    gc = regions["_gc"].to_numpy(dtype=float)
    # The axis spans the data (windows are rarely outside 0.3-0.6 GC), not 0-1. A window of
    # L bp has a GC fraction in steps of 1/L: bins are whole steps wide and centred on them,
    # or histograms alternate between full and empty bins.
    lo, hi = np.nanquantile(gc, [0.001, 0.999]) if len(gc) else (0.0, 1.0)
    length = int((regions["end"] - regions["start"]).iloc[0]) if len(regions) else 100
    width = max(1, round((hi - lo) / 40 * length)) / length
    bins = np.arange(lo - width, hi + 2 * width, width) - 0.5 / length
    pos = (regions["kind"] == "peak").to_numpy()
    ax.hist(gc[pos], bins=bins, alpha=0.6, density=True, label="positives")
    ax.hist(gc[~pos], bins=bins, alpha=0.6, density=True, label=f"negatives ({strategy})")
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel("GC fraction of window")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
