"""Region preparation: peaks -> fixed windows, negatives, labels and a chromosome split.

Accepted peak files
-------------------
BED3, BED6+ and narrowPeak, plain or gzipped; ``track``, ``browser`` and ``#`` lines are
skipped; columns are tab-separated (runs of spaces are accepted too). The window centre is
the narrowPeak summit (``start + column 10``) where column 10 is present and not -1,
otherwise the midpoint. Regression reads narrowPeak column 7 (signalValue).

Steps, in order
---------------
1. Validate every peak file (and the blacklist) before any long work: each bad line raises
   :class:`InputError` with file, line, what was expected and the fix.
2. Drop peaks on excluded chromosomes; merge peaks (of any task) whose summits lie within
   ``merge_distance`` bp, keeping the strongest; make windows of ``sequence_length`` centred
   on the summits; drop windows off a chromosome end, overlapping the blacklist, or with an
   N fraction above ``max_n_fraction``. Each reason is counted and logged.
3. Split whole chromosomes into train/valid/test (given lists, or a deterministic greedy
   assignment that reaches the valid/test fractions for any chromosome names).
4. Negatives: ``gc_matched`` (random genomic windows, clear of every peak by ``margin``, drawn
   to match the positives' GC histogram), ``flanks`` (windows shifted by multiples of
   ``flank_shift``) or ``dinuc_shuffle`` (rows that ``extract`` fills with shuffled positives).
5. Labels: a window is positive for a task when it and one of the task's peaks overlap by at
   least half of either (bedtools ``intersect -f 0.5 -F 0.5 -e``), and for the task(s) whose
   summit it is centred on. Regression labels are log1p(signalValue) of the strongest such
   peak; multiclass labels are one-hot over the tasks plus ``background`` (the negatives).
"""

from __future__ import annotations

import gzip
import html
import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from peak2motif.errors import InputError
from peak2motif.extract import SHUFFLE_TAG, chromosome_lengths, window_stats
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
TASK_TYPES = ("binary", "multitask", "multiclass", "regression")
POOL_FACTOR = 5  # candidate background windows per wanted gc_matched negative, per round
POOL_ROUNDS = 4  # at most this many rounds of candidates
BED_HELP = ("BED columns are tab-separated: chrom, start (0-based), end, then optionally "
            "name, score, strand, signalValue, pValue, qValue, summit offset (narrowPeak)")


def resolve_task_type(task: str, n_files: int) -> str:
    """``auto`` -> ``binary`` for one peak file, ``multitask`` for several."""
    if task == "auto":
        return "binary" if n_files == 1 else "multitask"
    return task


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
    chromosomes missing from ``lengths`` are an error unless ``allow_unknown``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("peak file not found", path=str(path),
                         fix="check the path in your config; relative paths start at the "
                             "working directory")
    known = set(lengths)
    rows = []
    with _open_text(path) as fh:
        try:
            lines = list(enumerate(fh, start=1))
        except (UnicodeDecodeError, OSError, EOFError) as err:
            raise InputError(f"cannot read the file as text ({err})", path=str(path),
                             fix="give a plain or gzipped BED/narrowPeak file") from None
    for no, raw in lines:
        text = raw.rstrip("\n\r")
        if not text.strip() or text.startswith(("#", "track", "browser")):
            continue
        f = text.split("\t") if "\t" in text else text.split()
        if len(f) < 3:
            raise InputError(
                f"malformed line {text[:60]!r}: expected at least 3 columns, found {len(f)}",
                path=str(path), line=no, fix=BED_HELP)
        chrom = f[0]
        try:
            start, end = int(f[1]), int(f[2])
        except ValueError:
            raise InputError(
                f"malformed line {text[:60]!r}: start and end must be integers",
                path=str(path), line=no, fix=BED_HELP) from None
        if start < 0 or end < 0:
            raise InputError(f"negative coordinate ({start}, {end})", path=str(path), line=no,
                             fix="BED coordinates are 0-based and non-negative; correct or "
                                 "remove the line")
        if start > end:
            raise InputError(f"start {start} is greater than end {end}", path=str(path),
                             line=no, fix="swap the two columns or remove the line")
        if chrom in skip_chromosomes:
            continue
        if chrom not in known:
            if allow_unknown:
                continue
            raise InputError(
                f"chromosome '{chrom}' is not in the genome FASTA",
                path=str(path), line=no, fix=_chr_hint(chrom, known).replace("PEAKS", str(path)))
        summit = (start + end) // 2
        if len(f) >= 10 and f[9] not in ("", "."):
            try:
                off = int(f[9])
            except ValueError:
                raise InputError(f"summit (column 10) {f[9]!r} is not an integer",
                                 path=str(path), line=no, fix=BED_HELP) from None
            if off != -1:
                if not 0 <= off <= end - start:
                    raise InputError(
                        f"summit offset {off} lies outside the peak (length {end - start})",
                        path=str(path), line=no,
                        fix="column 10 is the summit's offset from start, or -1 for none")
                summit = start + off
        signal = math.nan
        if len(f) >= 7:
            try:
                signal = float(f[6])
            except ValueError:
                signal = math.nan
        if need_signal and not math.isfinite(signal):
            raise InputError(
                "regression needs a numeric signalValue in column 7 (narrowPeak)",
                path=str(path), line=no,
                fix="give narrowPeak files, or set the dataset's 'task' to binary/multitask")
        name = f[3] if len(f) >= 4 and f[3] not in ("", ".") else f"{chrom}:{start}-{end}"
        rows.append((chrom, start, end, name, summit, signal, no))
    return pd.DataFrame(rows, columns=["chrom", "start", "end", "name", "summit", "signal",
                                       "line"])


# --------------------------------------------------------------------------------------
# chromosome split


def assign_splits(
    counts: dict[str, int],
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    valid: list[str] | None = None,
    test: list[str] | None = None,
    key: str = "datasets",
) -> dict[str, str]:
    """Chromosome -> split. Given lists win; the rest is assigned greedily.

    Chromosomes go in order of decreasing count (ties by name) to the split furthest below
    its target count, except that the last ones go to valid/test while those are still empty;
    chromosomes without positives go to train. Deterministic, and works for any names.
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
            s = unfilled[0]  # the last chromosomes go to splits that are still empty
        else:
            # the split furthest below its target; ties prefer test, then valid, then train
            s = max(auto, key=lambda s: (target[s] * total - have[s],
                                         ("train", "valid", "test").index(s)))
        out[c] = s
        have[s] += counts[c]
    empty = [s for s in SPLITS if have[s] == 0]
    if empty:
        raise InputError(
            f"split(s) {empty} got no chromosome with peaks ({len(rest) + len(given)} "
            "chromosomes carry peaks; a chromosome split needs at least 3)",
            key=f"{key}: valid_chromosomes",
            fix="use a genome with more chromosomes carrying peaks, or set valid_chromosomes "
                "and test_chromosomes explicitly")
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
# negatives


def _allowed_space(lengths: dict[str, int], exclude: pd.DataFrame, width: int,
                   tmpdir: Path) -> pd.DataFrame:
    """Intervals of the kept chromosomes outside ``exclude`` that can hold a window
    (bedtools sort | merge | complement)."""
    genome_file = tmpdir / "genome.sizes"
    genome_file.write_text("".join(f"{c}\t{n}\n" for c, n in lengths.items()))
    excl = exclude[exclude["chrom"].isin(list(lengths))][["chrom", "start", "end"]]
    if excl.empty:
        free = pd.DataFrame({"chrom": list(lengths), "start": 0, "end": list(lengths.values())})
    else:
        free = (_bt(excl).sort(g=str(genome_file)).merge().complement(g=str(genome_file))
                .to_dataframe(disable_auto_names=True, header=None,
                              names=["chrom", "start", "end"]))
    free = free.astype({"chrom": str, "start": np.int64, "end": np.int64})
    return free[free["end"] - free["start"] >= width].reset_index(drop=True)


def _random_windows(free: pd.DataFrame, n: int, width: int,
                    rng: np.random.Generator) -> pd.DataFrame:
    """``n`` windows placed uniformly at random inside the ``free`` intervals."""
    if free.empty or n <= 0:
        return pd.DataFrame(columns=["chrom", "start", "end"])
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


def _bin_deficit(pos_gc: np.ndarray, pool_gc: np.ndarray, ratio: float, bins: int) -> int:
    edges = _gc_edges(pos_gc, bins)
    nb = len(edges) - 1
    want = np.ceil(np.bincount(np.clip(np.digitize(pos_gc, edges) - 1, 0, nb - 1),
                               minlength=nb) * ratio)
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


def _usable(cand, genome, lengths, kept_lengths, exclude, chrom_rank, cfg):
    """Candidates inside kept chromosomes, clear of ``exclude``, not overlapping each other,
    with few N; returns them (sorted) and their GC."""
    cand = cand[(cand["start"] >= 0) & cand["chrom"].isin(list(kept_lengths))]
    cand = cand[cand["end"] <= cand["chrom"].map(lengths)].reset_index(drop=True)
    cand = cand[~_overlaps(cand, exclude)].reset_index(drop=True)
    cand = cand.assign(rank=cand["chrom"].map(chrom_rank))
    cand = _drop_overlapping(cand.sort_values(["rank", "start"], kind="stable"))
    cand = cand.drop(columns="rank").reset_index(drop=True)
    cgc, cn = window_stats(genome, cand, int(cfg.get("chunk_size", 4096)))
    good = cn <= float(cfg.get("max_n_fraction", 0.05))
    return cand[good].reset_index(drop=True), cgc[good]


# --------------------------------------------------------------------------------------
# the stage


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
    ``data_config`` the ``data`` section of the config (schema defaults filled in).
    Returns the regions table (columns chrom, start, end, name, split, one per task).
    """
    import tempfile

    import pybedtools

    ds = dict(dataset_config or {})
    cfg = dict(data_config or {})
    neg = dict(cfg.get("negatives", {}))
    split_cfg = dict(cfg.get("split", {}))
    width = int(cfg.get("sequence_length", 200))
    seed = int(cfg.get("seed", 0))
    key = f"datasets: {dataset}"
    task_type = resolve_task_type(ds.get("task", "auto"), len(peaks))
    tasks = list(peaks)
    if task_type == "binary" and len(tasks) != 1:
        raise InputError(f"task 'binary' needs one peak file, got {len(tasks)}",
                         key=f"{key}: task", fix="use multitask or multiclass, or one file")

    # 1. validate everything before any long work
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
    kept_lengths = {c: n for c, n in lengths.items() if c not in skip}
    per_task = {}
    for t, path in peaks.items():
        per_task[t] = read_bed(path, lengths, skip_chromosomes=skip,
                               need_signal=task_type == "regression")
    blacklist = pd.DataFrame(columns=["chrom", "start", "end"])
    if ds.get("blacklist"):
        blacklist = read_bed(ds["blacklist"], lengths, allow_unknown=True)[
            ["chrom", "start", "end"]]

    # 2. merge, window, filter
    stats: dict[str, float | str] = {}
    allpk = []
    for t, df in per_task.items():
        stats[f"peaks_read_{t}"] = len(df)
        allpk.append(df.assign(task=t))
    if sum(len(d) for d in allpk) == 0:
        raise InputError(
            "no peaks left after skipping header lines and excluded chromosomes",
            path=", ".join(str(p) for p in peaks.values()),
            fix="check the file has BED lines and that 'chromosomes'/'exclude_chromosomes' "
                "do not remove all of them")
    pk = pd.concat(allpk, ignore_index=True)
    pk["signal_sort"] = pk["signal"].fillna(0)
    chrom_rank = {c: i for i, c in enumerate(lengths)}
    pk["rank"] = pk["chrom"].map(chrom_rank)
    pk = pk.sort_values(["rank", "summit", "signal_sort"], ascending=[True, True, False],
                        kind="stable").reset_index(drop=True)
    merge = int(cfg.get("merge_distance", 0))
    new_cluster = (pk["chrom"] != pk["chrom"].shift()) | (pk["summit"].diff() > merge)
    pk["cluster"] = new_cluster.cumsum()
    best = pk.sort_values(["cluster", "signal_sort"], ascending=[True, False], kind="stable")
    reps = best.drop_duplicates("cluster").sort_values(["rank", "summit"]).reset_index(drop=True)
    sources = pk.groupby("cluster")["task"].agg(lambda s: sorted(set(s)))
    reps["sources"] = reps["cluster"].map(sources)
    stats["dropped_duplicate"] = len(pk) - len(reps)

    win = pd.DataFrame({"chrom": reps["chrom"], "start": reps["summit"] - width // 2})
    win["end"] = win["start"] + width
    win["name"] = reps["name"].to_numpy()
    dup = win["name"].duplicated(keep=False)
    win.loc[dup, "name"] = win.loc[dup, "name"] + "_" + win.index[dup].astype(str)
    ok = (win["start"] >= 0) & (win["end"] <= win["chrom"].map(lengths))
    stats["dropped_off_chromosome_end"] = int((~ok).sum())
    win, reps = win[ok].reset_index(drop=True), reps[ok].reset_index(drop=True)
    bl = _overlaps(win, blacklist)
    stats["dropped_blacklist"] = int(bl.sum())
    win, reps = win[~bl].reset_index(drop=True), reps[~bl].reset_index(drop=True)
    gc, nfrac = window_stats(genome, win, int(cfg.get("chunk_size", 4096)))
    too_n = nfrac > float(cfg.get("max_n_fraction", 0.05))
    stats["dropped_too_many_n"] = int(too_n.sum())
    win, reps, gc = (win[~too_n].reset_index(drop=True), reps[~too_n].reset_index(drop=True),
                     gc[~too_n])
    for reason in ("duplicate", "off_chromosome_end", "blacklist", "too_many_n"):
        log.info("dropped %d peaks: %s", stats[f"dropped_{reason}"], reason.replace("_", " "))
    if win.empty:
        raise InputError(
            "no windows left after filtering ("
            + ", ".join(f"{k}={v}" for k, v in stats.items() if k.startswith("dropped")) + ")",
            path=", ".join(str(p) for p in peaks.values()),
            fix="check that peaks and genome are the same assembly, and loosen "
                "data: max_n_fraction or the blacklist")

    # 3. split by chromosome
    counts = {c: int((win["chrom"] == c).sum()) for c in kept_lengths}
    split_of = assign_splits(
        counts, float(split_cfg.get("valid_fraction", 0.15)),
        float(split_cfg.get("test_fraction", 0.15)),
        ds.get("valid_chromosomes"), ds.get("test_chromosomes"), key=key)

    # 4. negatives
    strategy = neg.get("strategy", "gc_matched")
    ratio = float(neg.get("ratio", 1.0))
    margin = int(neg.get("margin", 500))
    n_neg = int(round(ratio * len(win)))
    rng = np.random.default_rng(seed)
    exclude = pd.concat([pk[["chrom", "start", "end"]], win[["chrom", "start", "end"]]])
    exclude = exclude.assign(start=(exclude["start"] - margin).clip(lower=0),
                             end=exclude["end"] + margin)
    exclude = pd.concat([exclude, blacklist])
    neg_gc = np.array([])
    with tempfile.TemporaryDirectory() as tmpd:
        try:
            if strategy == "dinuc_shuffle":
                reps_k = math.ceil(ratio)
                cand = pd.concat([win.assign(name=win["name"] + f"::dinuc_shuffle{k}")
                                  for k in range(1, reps_k + 1)], ignore_index=True)
                pick = np.sort(rng.choice(len(cand), size=min(n_neg, len(cand)),
                                          replace=False))
                negs = cand.iloc[pick][["chrom", "start", "end", "name"]]
                neg_gc = np.tile(gc, reps_k)[pick]
            else:
                if strategy == "flanks":
                    shift = int(neg.get("flank_shift", 1000))
                    cand = pd.concat(
                        [win[["chrom", "start", "end"]].assign(
                            start=win["start"] + sgn * k * shift, end=win["end"] + sgn * k * shift)
                         for k in range(1, math.ceil(ratio) + 1) for sgn in (-1, 1)],
                        ignore_index=True)
                    cand, cgc = _usable(cand, genome, lengths, kept_lengths, exclude,
                                        chrom_rank, cfg)
                else:
                    # draw rounds of random background until every GC bin can be filled
                    free = _allowed_space(kept_lengths, exclude, width, Path(tmpd))
                    cand = pd.DataFrame(columns=["chrom", "start", "end"])
                    cgc = np.array([])
                    rounds = 0
                    while rounds < POOL_ROUNDS:
                        rounds += 1
                        more = _random_windows(free, max(POOL_FACTOR * n_neg, 100), width, rng)
                        if len(cand):
                            more = more[~_overlaps(more, cand)]
                        more, mgc = _usable(more, genome, lengths, kept_lengths, exclude,
                                            chrom_rank, cfg)
                        cand = pd.concat([cand, more], ignore_index=True)
                        cgc = np.concatenate([cgc, mgc])
                        if _bin_deficit(gc, cgc, ratio, int(neg.get("gc_bins", 20))) == 0:
                            break
                    log.info("gc_matched: %d candidate windows in %d round(s)", len(cand),
                             rounds)
                if strategy == "flanks":
                    pick = np.sort(rng.choice(len(cand), size=min(n_neg, len(cand)),
                                              replace=False))
                    short = n_neg - len(pick)
                else:
                    pick, short = _match_gc(gc, cgc, n_neg, int(neg.get("gc_bins", 20)), rng)
                negs = cand.iloc[pick].copy()
                neg_gc = cgc[pick]
                stats["negatives_shortfall"] = int(short)
                if short:
                    log.warning("%d fewer negatives than asked for (%s): the genome has too "
                                "little background clear of peaks", short, strategy)
                negs["name"] = [f"neg{i + 1}" for i in range(len(negs))]
            labels = _labels(win, reps, per_task, tasks, task_type)
        finally:
            pybedtools.cleanup(remove_all=False)

    # 5. assemble
    label_cols = list(labels.columns)
    negs = negs.reset_index(drop=True)
    neg_labels = pd.DataFrame(0.0, index=range(len(negs)), columns=label_cols)
    if task_type == "multiclass":
        neg_labels["background"] = 1.0
    pos = pd.concat([win[["chrom", "start", "end", "name"]], labels], axis=1)
    pos["_gc"], pos["_pos"] = gc, True
    negt = pd.concat([negs, neg_labels], axis=1)
    negt["_gc"], negt["_pos"] = neg_gc, False
    regions = pd.concat([pos, negt], ignore_index=True)
    regions["split"] = regions["chrom"].map(split_of)
    regions["_rank"] = regions["chrom"].map(chrom_rank)
    regions = regions.sort_values(["_rank", "start", "name"], kind="stable").reset_index(
        drop=True)
    out = regions[["chrom", "start", "end", "name", "split"] + label_cols]
    with atomic_output(regions_out) as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.6g")

    summary = _summary(regions, stats, split_of, strategy, task_type, label_cols)
    with atomic_output(summary_out) as tmp:
        summary.to_csv(tmp, sep="\t", index=False)
    if summary_html:
        _write_html(summary, out, summary_html, dataset)
    if gc_png:
        _plot_gc(regions, gc_png, strategy)
    log.info("%d positives, %d negatives (%s)", int(regions["_pos"].sum()),
             int((~regions["_pos"]).sum()), strategy)
    return out


def _labels(win, reps, per_task, tasks, task_type) -> pd.DataFrame:
    n = len(win)
    mat = np.zeros((n, len(tasks)), dtype=np.float64)
    strength = np.zeros((n, len(tasks)), dtype=np.float64)
    for j, t in enumerate(tasks):
        hits = _label_overlaps(win, per_task[t])
        if len(hits):
            g = hits.groupby("i")["signal"].max()
            mat[g.index.to_numpy(), j] = 1
            strength[g.index.to_numpy(), j] = g.to_numpy()
        own = np.array([t in s for s in reps["sources"]])
        mat[own, j] = 1
        strength[own, j] = np.maximum(strength[own, j], reps["signal_sort"].to_numpy()[own])
    if task_type == "regression":
        vals = np.where(mat > 0, np.log1p(np.maximum(strength, 0)), 0.0)
        return pd.DataFrame(vals, columns=tasks)
    if task_type == "multiclass":
        one = np.zeros((n, len(tasks) + 1))
        # the class is the task the window is centred on (the strongest, if merged)
        src = [tasks.index(s[0]) if len(s) == 1 else
               max((tasks.index(t) for t in s), key=lambda j, i=i: strength[i, j])
               for i, s in enumerate(reps["sources"])]
        one[np.arange(n), src] = 1
        return pd.DataFrame(one, columns=tasks + ["background"])
    return pd.DataFrame(mat, columns=tasks)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the two ECDFs)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def _summary(regions, stats, split_of, strategy, task_type, label_cols) -> pd.DataFrame:
    pos = regions["_pos"].to_numpy()
    rows = list(stats.items())
    rows += [("task_type", task_type), ("tasks", ",".join(label_cols)),
             ("negative_strategy", strategy),
             ("positives", int(pos.sum())), ("negatives", int((~pos).sum())),
             ("sequence_length", int((regions["end"] - regions["start"]).iloc[0]))]
    for s in SPLITS:
        in_s = regions["split"].to_numpy() == s
        rows += [(f"positives_{s}", int((pos & in_s).sum())),
                 (f"negatives_{s}", int((~pos & in_s).sum())),
                 (f"chromosomes_{s}", ",".join(c for c, v in split_of.items() if v == s))]
    gc = regions["_gc"].to_numpy(dtype=float)
    rows += [("gc_mean_positives", round(float(gc[pos].mean()), 4)),
             ("gc_mean_negatives", round(float(gc[~pos].mean()), 4) if (~pos).any() else ""),
             ("gc_ks_statistic", round(_ks(gc[pos], gc[~pos]), 4))]
    return pd.DataFrame(rows, columns=["metric", "value"])


def _write_html(summary: pd.DataFrame, regions: pd.DataFrame, path, dataset: str) -> None:
    head = regions.head(20).to_html(index=False, border=0)
    body = (f"<html><head><meta charset='utf-8'><title>{html.escape(dataset)}: data</title>"
            "<style>body{font-family:sans-serif} table{border-collapse:collapse} "
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}</style>"
            f"</head><body><h2>Data summary: {html.escape(dataset)}</h2>"
            + summary.to_html(index=False, border=0)
            + "<h3>First regions (regions.tsv)</h3>" + head + "</body></html>")
    with atomic_output(path) as tmp:
        Path(tmp).write_text(body)


def _plot_gc(regions: pd.DataFrame, path, strategy: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    bins = np.linspace(0, 1, 41)
    pos = regions["_pos"].to_numpy()
    ax.hist(regions["_gc"][pos], bins=bins, alpha=0.6, density=True, label="positives")
    ax.hist(regions["_gc"][~pos], bins=bins, alpha=0.6, density=True,
            label=f"negatives ({strategy})")
    ax.set_xlabel("GC fraction of window")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


__all__ = ["prepare_regions", "read_bed", "assign_splits", "resolve_task_type", "SHUFFLE_TAG"]
