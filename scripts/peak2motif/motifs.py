"""Motif discovery with TF-MoDISco-lite and matching with TomTom (memelite) against JASPAR.

Array conventions
-----------------
- Contributions come from ``results/NAME/contributions/contributions.h5``: ``onehot`` and
  ``hypothetical``, each ``(N, L, 4)`` float32 in the order A, C, G, T, and ``region_index``
  ``(N,)``, the row of each sequence in ``regions.tsv``.
- TF-MoDISco-lite's Python API, used here, takes ``(N, L, 4)``. Its command line takes
  ``(N, 4, L)`` arrays (npz key ``arr_0``); we never write those.
- A pattern's PPM and CWM are ``(W, 4)``; memelite's ``tomtom`` and ``write_meme`` take
  ``(4, W)``, so they get the transpose.

``modisco.h5`` is modisco-lite's own file (``pos_patterns/pattern_i/{sequence,
contrib_scores, hypothetical_contribs, seqlets/...}``, same for ``neg_patterns``) with one
difference: modisco sees the sequences in a seeded random order (its ``max_seqlets`` keeps
seqlets in input order, so an unshuffled input would keep only the first sequences), and
``seqlets/example_idx`` is mapped back to rows of ``contributions.h5``. The attribute
``example_idx`` of the file says so.

Filters and matching
--------------------
TF-MoDISco reports junk patterns even on noise (about 17 on noise-only input), and untrimmed
junk matches JASPAR motifs at tiny p-values. A pattern is therefore kept only when it has at
least ``min_seqlets`` seqlets and, after trimming to the span of positions with at least
``trim_threshold`` bits of information, is at least ``min_length`` long and carries at least
``min_information`` bits in total. TomTom p-values of every kept pattern against every
database motif are corrected for multiple testing (Benjamini-Hochberg), and a match is
reported only when its q-value is below ``max_qvalue``.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from peak2motif.config import with_defaults
from peak2motif.errors import InputError
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

BASES = "ACGT"
BACKGROUND = np.full(4, 0.25)

MOTIF_COLUMNS = [
    "pattern",
    "sign",
    "n_seqlets",
    "consensus",
    "length",
    "match_id",
    "match_name",
    "match_class",
    "pvalue",
    "qvalue",
    "match_family",
    "match_strand",
    "match_offset",
    "second_match_id",
    "second_match_name",
    "second_match_qvalue",
    "information",
    "seqlet_fraction_in_planted",
    "planted_motif",
]

PATTERN_COLUMNS = [
    "pattern",
    "sign",
    "n_seqlets",
    "trim_start",
    "trim_end",
    "length",
    "information",
    "kept",
    "reason",
]


# ---------------------------------------------------------------------------------------------
# Running TF-MoDISco-lite
# ---------------------------------------------------------------------------------------------


def read_contributions(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``onehot`` and ``hypothetical`` ``(N, L, 4)`` float32 and ``region_index`` ``(N,)``."""
    with h5py.File(path, "r") as fh:
        missing = [k for k in ("onehot", "hypothetical", "region_index") if k not in fh]
        if missing:
            raise InputError(
                f"missing dataset(s) {', '.join(missing)}",
                path=str(path),
                fix="rerun the rule compute_contributions, which writes onehot, actual, "
                "hypothetical and region_index",
            )
        onehot = fh["onehot"][:].astype(np.float32)
        hyp = fh["hypothetical"][:].astype(np.float32)
        region_index = fh["region_index"][:].astype(np.int64)
    if onehot.shape != hyp.shape or onehot.ndim != 3 or onehot.shape[2] != 4:
        raise InputError(
            f"onehot {onehot.shape} and hypothetical {hyp.shape} must both be (N, L, 4)",
            path=str(path),
        )
    return onehot, hyp, region_index


def run_modisco(
    onehot: np.ndarray,
    hypothetical: np.ndarray,
    *,
    seed: int,
    max_seqlets: int = 20000,
    n_leiden_runs: int = 2,
    sliding_window_size: int = 20,
    flank_size: int = 5,
    trim_to_window_size: int = 30,
    initial_flank_to_add: int = 10,
    final_flank_to_add: int = 0,
    target_seqlet_fdr: float = 0.05,
    min_metacluster_size: int = 100,
    final_min_cluster_size: int = 20,
) -> tuple[list | None, list | None, np.ndarray]:
    """Run TF-MoDISco-lite on a seeded shuffle of the sequences.

    Parameters
    ----------
    onehot, hypothetical
        ``(N, L, 4)`` float32; the window is the whole sequence (length L).
    seed
        Seed of the shuffle that decides which seqlets ``max_seqlets`` keeps.
    Other parameters are TF-MoDISco-lite's (defaults are those of its command line).

    Returns
    -------
    pos_patterns, neg_patterns
        modisco's SeqletSet lists (or None when a metacluster had too few seqlets). Their
        seqlets' ``example_idx`` refer to the *shuffled* order.
    order
        ``(N,)`` the permutation: shuffled row i is input row ``order[i]``.
    """
    from modiscolite.tfmodisco import TFMoDISco

    n, length, _ = onehot.shape
    if n == 0:
        return None, None, np.zeros(0, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(n)
    x = np.ascontiguousarray(onehot[order], dtype=np.float32)
    h = np.ascontiguousarray(hypothetical[order], dtype=np.float32)
    window = min(sliding_window_size, length)
    log.info("TF-MoDISco-lite on %d sequences of %d bp (window = sequence length)", n, length)
    if not np.any(h):
        log.warning("all hypothetical contributions are zero: no seqlet can be found")
        return None, None, order
    pos, neg = TFMoDISco(
        one_hot=x,
        hypothetical_contribs=h,
        max_seqlets_per_metacluster=max_seqlets,
        sliding_window_size=window,
        flank_size=flank_size,
        trim_to_window_size=trim_to_window_size,
        initial_flank_to_add=initial_flank_to_add,
        final_flank_to_add=final_flank_to_add,
        target_seqlet_fdr=target_seqlet_fdr,
        n_leiden_runs=n_leiden_runs,
        min_metacluster_size=min_metacluster_size,
        final_min_cluster_size=final_min_cluster_size,
    )
    return pos, neg, order


def write_modisco(
    path: str | Path, pos_patterns, neg_patterns, order: np.ndarray, window: int
) -> None:
    """Save modisco's result with ``seqlets/example_idx`` mapped back to input rows."""
    from modiscolite.io import save_hdf5

    with atomic_output(path) as tmp:
        save_hdf5(str(tmp), pos_patterns, neg_patterns, window)
        # save_hdf5 leaves its h5py.File to the garbage collector; close it before reopening.
        gc.collect()
        with h5py.File(tmp, "r+") as fh:
            fh.attrs["example_idx"] = "row of contributions.h5 (modisco ran on a seeded shuffle)"

            def remap(name, obj):
                if isinstance(obj, h5py.Dataset) and name.endswith("seqlets/example_idx"):
                    obj[...] = order[obj[...]]

            fh.visititems(remap)


def discover_motifs(
    contributions: str | Path, modisco_h5: str | Path, params: dict, threads: int = 1
) -> None:
    """Rule ``discover_motifs``: contributions.h5 -> modisco.h5 (see :func:`run_modisco`)."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    onehot, hyp, _ = read_contributions(contributions)
    keys = (
        "max_seqlets",
        "n_leiden_runs",
        "sliding_window_size",
        "flank_size",
        "trim_to_window_size",
        "initial_flank_to_add",
        "final_flank_to_add",
        "target_seqlet_fdr",
        "min_metacluster_size",
        "final_min_cluster_size",
    )
    params = with_defaults("motifs", params)
    kwargs = {k: params[k] for k in keys}
    pos, neg, order = run_modisco(onehot, hyp, seed=params["seed"], **kwargs)
    write_modisco(modisco_h5, pos, neg, order, window=onehot.shape[1])
    log.info(
        "modisco found %d positive and %d negative patterns",
        len(pos or []),
        len(neg or []),
    )


# ---------------------------------------------------------------------------------------------
# Patterns, information content, filters
# ---------------------------------------------------------------------------------------------


@dataclass
class Pattern:
    """One modisco pattern.

    ``ppm``, ``cwm`` and ``hcwm`` are ``(W, 4)``; ``seqlets`` has columns example_idx, start,
    end, is_revcomp (coordinates within the sequence; example_idx is a contributions.h5 row).
    """

    name: str
    sign: str
    ppm: np.ndarray
    cwm: np.ndarray
    hcwm: np.ndarray
    seqlets: pd.DataFrame
    trim: tuple[int, int] | None = None
    ic: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_seqlets(self) -> int:
        return len(self.seqlets)


def load_patterns(path: str | Path) -> list[Pattern]:
    """Read every top-level pattern of a modisco.h5 (positive first, in modisco's order)."""
    patterns = []
    with h5py.File(path, "r") as fh:
        for group, sign in (("pos_patterns", "positive"), ("neg_patterns", "negative")):
            if group not in fh:
                continue
            names = sorted(fh[group], key=lambda s: int(s.rsplit("_", 1)[-1]))
            for name in names:
                g = fh[group][name]
                s = g["seqlets"]
                seqlets = pd.DataFrame(
                    {
                        "example_idx": s["example_idx"][:].astype(np.int64),
                        "start": s["start"][:].astype(np.int64),
                        "end": s["end"][:].astype(np.int64),
                        "is_revcomp": s["is_revcomp"][:].astype(bool),
                    }
                )
                patterns.append(
                    Pattern(
                        name=f"{group}.{name}",
                        sign=sign,
                        ppm=g["sequence"][:],
                        cwm=g["contrib_scores"][:],
                        hcwm=g["hypothetical_contribs"][:],
                        seqlets=seqlets,
                    )
                )
    return patterns


def information_content(ppm: np.ndarray, pseudocount: float = 1e-3) -> np.ndarray:
    """Bits of information of each position of a ``(W, 4)`` PPM against a uniform background."""
    p = np.asarray(ppm, dtype=np.float64) + pseudocount
    p = p / p.sum(axis=1, keepdims=True)
    return (p * np.log2(p / BACKGROUND)).sum(axis=1)


def trim_window(ic: np.ndarray, threshold: float) -> tuple[int, int] | None:
    """``(start, end)`` spanning the first to the last position with ``ic >= threshold``.

    Positions inside the span keep their place even when uninformative (CTCF has such gaps).
    None when no position reaches the threshold.
    """
    hits = np.flatnonzero(np.asarray(ic) >= threshold)
    if len(hits) == 0:
        return None
    return int(hits[0]), int(hits[-1]) + 1


def consensus(ppm: np.ndarray, ic: np.ndarray, threshold: float) -> str:
    """Most likely base per position: upper case at ``>= threshold`` bits, lower case below."""
    letters = np.array(list(BASES))[np.asarray(ppm).argmax(axis=1)]
    return "".join(b if i >= threshold else b.lower() for b, i in zip(letters, ic, strict=True))


def filter_patterns(
    patterns: list[Pattern],
    *,
    min_seqlets: int,
    trim_threshold: float,
    min_length: int,
    min_information: float,
) -> pd.DataFrame:
    """Trim every pattern and decide which are kept; sets ``pattern.trim`` and ``pattern.ic``.

    Returns one row per pattern (columns :data:`PATTERN_COLUMNS`) saying why a pattern was
    dropped, so the report can show what TF-MoDISco found and what the filters removed.
    """
    rows = []
    for p in patterns:
        p.ic = information_content(p.ppm)
        p.trim = trim_window(p.ic, trim_threshold)
        start, end = p.trim if p.trim else (0, 0)
        info = float(p.ic[start:end].sum())
        reason = ""
        if p.n_seqlets < min_seqlets:
            reason = f"{p.n_seqlets} seqlets < min_seqlets {min_seqlets}"
        elif p.trim is None:
            reason = f"no position reaches {trim_threshold} bits"
        elif end - start < min_length:
            reason = f"trimmed length {end - start} < min_length {min_length}"
        elif info < min_information:
            reason = f"{info:.1f} bits < min_information {min_information}"
        rows.append(
            {
                "pattern": p.name,
                "sign": p.sign,
                "n_seqlets": p.n_seqlets,
                "trim_start": start,
                "trim_end": end,
                "length": end - start,
                "information": round(info, 3),
                "kept": not reason,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=PATTERN_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Motif databases
# ---------------------------------------------------------------------------------------------


@dataclass
class MotifDatabase:
    """Target motifs: ``ppms[i]`` is a ``(4, W)`` PPM whose rows sum to 1 over A, C, G, T."""

    ids: list[str]
    names: list[str]
    classes: list[str]
    families: list[str]
    ppms: list[np.ndarray]
    source: str

    def __len__(self) -> int:
        return len(self.ids)


def _normalise(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return counts / np.clip(counts.sum(axis=0, keepdims=True), 1e-12, None)


def load_jaspar(release: str, collection: str, tax_groups: list[str]) -> MotifDatabase:
    """The latest version of each JASPAR matrix of a release, from pyjaspar's offline copy."""
    from pyjaspar import jaspardb

    db = jaspardb(release=release)
    if release not in db.get_releases():
        raise InputError(
            f"unknown JASPAR release '{release}'",
            key="motifs: jaspar_release",
            fix=f"use one of {', '.join(db.get_releases())}",
        )
    motifs = db.fetch_motifs(
        collection=collection, tax_group=list(tax_groups) or None, all_versions=False
    )
    if not motifs:
        raise InputError(
            f"{release} has no motif in collection '{collection}' for tax group(s) "
            f"{', '.join(tax_groups)}",
            key="motifs: jaspar_tax_group",
            fix="check the spelling (e.g. CORE, vertebrates, plants, insects)",
        )

    def joined(values) -> str:
        return "; ".join(values) if isinstance(values, list | tuple) else str(values or "")

    return MotifDatabase(
        ids=[m.matrix_id for m in motifs],
        names=[m.name for m in motifs],
        classes=[joined(m.tf_class) for m in motifs],
        families=[joined(m.tf_family) for m in motifs],
        ppms=[_normalise([m.counts[b] for b in BASES]) for m in motifs],
        source=f"{release} {collection} {'/'.join(tax_groups)} (pyjaspar, offline)",
    )


def read_meme_database(path: str | Path) -> MotifDatabase:
    """A user's MEME file; a MOTIF line ``ID NAME`` gives the id and the name."""
    from memelite.io import read_meme

    path = Path(path)
    if not path.is_file():
        raise InputError("MEME file not found", path=str(path), key="motifs: meme_file")
    try:
        motifs = read_meme(str(path))
    except (ValueError, AttributeError, IndexError) as err:
        raise InputError(
            f"not a readable MEME motif file ({err})",
            path=str(path),
            fix="write it in MEME minimal format (MOTIF lines and letter-probability matrices)",
        ) from None
    if not motifs:
        raise InputError("no MOTIF found", path=str(path), key="motifs: meme_file")
    ids, names = [], []
    for key in motifs:
        parts = key.split(" ", 1)
        ids.append(parts[0])
        names.append(parts[1] if len(parts) > 1 else parts[0])
    return MotifDatabase(
        ids=ids,
        names=names,
        classes=[""] * len(ids),
        families=[""] * len(ids),
        ppms=[_normalise(m) for m in motifs.values()],
        source=str(path),
    )


def load_database(params: dict) -> MotifDatabase:
    """The user's MEME file if ``meme_file`` is set, else JASPAR from pyjaspar."""
    params = with_defaults("motifs", params)
    if params["meme_file"]:
        return read_meme_database(params["meme_file"])
    return load_jaspar(
        params["jaspar_release"],
        params["jaspar_collection"],
        list(params["jaspar_tax_group"]),
    )


# ---------------------------------------------------------------------------------------------
# TomTom
# ---------------------------------------------------------------------------------------------


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH q-values of an array of p-values of any shape (NaN stays NaN)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = false_discovery_control(np.clip(p[ok], 0, 1), method="bh")
    return q


def tomtom_matches(
    queries: list[np.ndarray],
    db: MotifDatabase,
    *,
    correction: str = "all",
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """TomTom every query ``(4, W)`` PPM against every database motif.

    Parameters
    ----------
    correction
        ``all``: Benjamini-Hochberg over all query x target tests together; ``per_pattern``:
        over the targets of each query separately.

    Returns
    -------
    dict of ``(Q, T)`` arrays: ``pvalue``, ``qvalue``, ``offset``, ``strand`` (0 '+', 1 '-'),
    ``overlap``. ``offset`` o means query column j faces target column j + o (in the
    reverse-complemented target when the strand is '-').
    """
    if not queries:
        empty = np.zeros((0, len(db)))
        return {k: empty for k in ("pvalue", "qvalue", "offset", "strand", "overlap")}
    from memelite import tomtom

    p, _scores, offsets, overlaps, strands = tomtom(
        [np.asarray(q, dtype=np.float64) for q in queries],
        [np.asarray(t, dtype=np.float64) for t in db.ppms],
        n_jobs=max(1, threads),
    )
    p = np.asarray(p, dtype=np.float64)
    if correction == "all":
        q = benjamini_hochberg(p)
    elif correction == "per_pattern":
        q = np.vstack([benjamini_hochberg(row) for row in p])
    else:
        raise InputError(
            f"unknown correction '{correction}'",
            key="motifs: multiple_testing",
            fix="use 'all' or 'per_pattern'",
        )
    return {
        "pvalue": p,
        "qvalue": q,
        "offset": np.asarray(offsets, dtype=np.int64),
        "strand": np.asarray(strands, dtype=np.int64),
        "overlap": np.asarray(overlaps, dtype=np.int64),
    }


# ---------------------------------------------------------------------------------------------
# Truth (simulated demo): where do a pattern's seqlets lie?
# ---------------------------------------------------------------------------------------------


def seqlet_intervals(
    pattern: Pattern, region_index: np.ndarray, regions: pd.DataFrame
) -> pd.DataFrame:
    """Genome intervals (chrom, start, end; 0-based half-open) of a pattern's trimmed seqlets.

    A seqlet on the reverse strand covers pattern column j at sequence position end - 1 - j,
    so its trimmed core ``[t0, t1)`` is ``[end - t1, end - t0)``.
    """
    t0, t1 = pattern.trim if pattern.trim else (0, len(pattern.ppm))
    s = pattern.seqlets
    rc = s["is_revcomp"].to_numpy()
    start = np.where(rc, s["end"] - t1, s["start"] + t0)
    end = np.where(rc, s["end"] - t0, s["start"] + t1)
    rows = region_index[s["example_idx"].to_numpy()]
    reg = regions.iloc[rows]
    length = (reg["end"] - reg["start"]).to_numpy()
    start = np.clip(start, 0, length)
    end = np.clip(end, 0, length)
    return pd.DataFrame(
        {
            "chrom": reg["chrom"].to_numpy(),
            "start": reg["start"].to_numpy() + start,
            "end": reg["start"].to_numpy() + end,
        }
    )


def overlap_planted(
    intervals: pd.DataFrame, planted: pd.DataFrame, min_fraction: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Which intervals overlap a planted motif instance, and which motif.

    An interval counts when the overlap covers at least ``min_fraction`` of the interval or
    of the planted instance (bedtools' ``-f F -F F -e``). Hand-written with numpy rather than
    bedtools: it runs on a few thousand short intervals, and the motif environment then needs
    no bedtools binary.

    Returns
    -------
    hit
        ``(n,)`` bool.
    motif
        ``(n,)`` object: ``motif_id`` of the planted instance with the largest overlap ('' if none).
    """
    n = len(intervals)
    hit = np.zeros(n, dtype=bool)
    motif = np.full(n, "", dtype=object)
    for chrom, idx in intervals.groupby("chrom").indices.items():
        truth = planted[planted["chrom"] == chrom]
        if truth.empty:
            continue
        ts = truth["start"].to_numpy()[None, :]
        te = truth["end"].to_numpy()[None, :]
        ids = truth["motif_id"].astype(str).to_numpy()
        for chunk in np.array_split(idx, max(1, len(idx) // 2000)):
            qs = intervals["start"].to_numpy()[chunk][:, None]
            qe = intervals["end"].to_numpy()[chunk][:, None]
            ov = np.clip(np.minimum(qe, te) - np.maximum(qs, ts), 0, None)
            need = min_fraction * np.minimum(qe - qs, te - ts)
            good = (ov > 0) & (ov >= need)
            any_good = good.any(axis=1)
            best = np.where(good, ov, -1).argmax(axis=1)
            hit[chunk] = any_good
            motif[chunk] = np.where(any_good, ids[best], "")
    return hit, motif


def read_regions(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"chrom": str})


def read_planted(path: str | Path) -> pd.DataFrame:
    planted = pd.read_csv(path, sep="\t", dtype={"chrom": str, "motif_id": str})
    missing = {"chrom", "start", "end", "motif_id"} - set(planted.columns)
    if missing:
        raise InputError(f"missing column(s) {', '.join(sorted(missing))}", path=str(path))
    return planted


# ---------------------------------------------------------------------------------------------
# The motif table
# ---------------------------------------------------------------------------------------------


def _best_two(p_row: np.ndarray, names: list[str]) -> tuple[int, int | None]:
    """Index of the smallest p-value, and of the next one with another TF name."""
    order = np.argsort(p_row, kind="stable")
    best = int(order[0])
    for j in order[1:]:
        if names[j].upper() != names[best].upper():
            return best, int(j)
    return best, None


def motif_table(
    kept: list[Pattern],
    db: MotifDatabase,
    matches: dict[str, np.ndarray],
    *,
    max_qvalue: float,
    trim_threshold: float,
    region_index: np.ndarray | None = None,
    regions: pd.DataFrame | None = None,
    planted: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per kept pattern (columns :data:`MOTIF_COLUMNS`).

    ``pvalue``/``qvalue`` are those of the best database motif whether or not it passes;
    ``match_*`` are filled only when ``qvalue < max_qvalue``. With a truth table,
    ``seqlet_fraction_in_planted`` is the fraction of the pattern's trimmed seqlets that
    overlap a planted instance, and ``planted_motif`` the motif_id most of them overlap.
    """
    rows = []
    for i, p in enumerate(kept):
        t0, t1 = p.trim
        row = dict.fromkeys(MOTIF_COLUMNS, None)
        row.update(
            pattern=p.name,
            sign=p.sign,
            n_seqlets=p.n_seqlets,
            consensus=consensus(p.ppm[t0:t1], p.ic[t0:t1], trim_threshold),
            length=t1 - t0,
            information=round(float(p.ic[t0:t1].sum()), 3),
        )
        if len(db):
            best, second = _best_two(matches["pvalue"][i], db.names)
            row.update(pvalue=matches["pvalue"][i, best], qvalue=matches["qvalue"][i, best])
            if matches["qvalue"][i, best] < max_qvalue:
                row.update(
                    match_id=db.ids[best],
                    match_name=db.names[best],
                    match_class=db.classes[best],
                    match_family=db.families[best],
                    match_strand="+-"[int(matches["strand"][i, best])],
                    match_offset=int(matches["offset"][i, best]),
                )
                if second is not None and matches["qvalue"][i, second] < max_qvalue:
                    row.update(
                        second_match_id=db.ids[second],
                        second_match_name=db.names[second],
                        second_match_qvalue=matches["qvalue"][i, second],
                    )
        if planted is not None and regions is not None and region_index is not None:
            hit, which = overlap_planted(seqlet_intervals(p, region_index, regions), planted)
            row["seqlet_fraction_in_planted"] = round(float(hit.mean()), 4) if len(hit) else 0.0
            ids = pd.Series(which[hit])
            row["planted_motif"] = ids.mode().iloc[0] if len(ids) else ""
        rows.append(row)
    table = pd.DataFrame(rows, columns=MOTIF_COLUMNS)
    return table


def write_meme(path: str | Path, kept: list[Pattern]) -> None:
    """The trimmed PPMs of the kept patterns as a MEME file (memelite.io.write_meme)."""
    from memelite.io import write_meme as _write_meme

    motifs = {}
    for p in kept:
        t0, t1 = p.trim
        ppm = np.asarray(p.ppm[t0:t1], dtype=np.float64)
        motifs[p.name] = (ppm / ppm.sum(axis=1, keepdims=True)).T
    with atomic_output(path) as tmp:
        _write_meme(str(tmp), motifs)


def match_motifs(
    *,
    modisco_h5: str | Path,
    contributions: str | Path,
    regions_tsv: str | Path,
    planted_tsv: str | Path | None,
    motifs_tsv: str | Path,
    patterns_tsv: str | Path,
    motifs_meme: str | Path,
    logos_dir: str | Path,
    html: str | Path,
    params: dict,
    threads: int = 1,
) -> pd.DataFrame:
    """Rule ``match_motifs``: filter, trim, TomTom, truth overlap, table, MEME, logos, HTML."""
    from peak2motif import logos

    params = with_defaults("motifs", params)
    patterns = load_patterns(modisco_h5)
    filters = {
        "min_seqlets": int(params["min_seqlets"]),
        "trim_threshold": float(params["trim_threshold"]),
        "min_length": int(params["min_length"]),
        "min_information": float(params["min_information"]),
    }
    summary = filter_patterns(patterns, **filters)
    kept = [p for p, k in zip(patterns, summary["kept"], strict=True) if k]
    log.info("%d of %d modisco patterns pass the filters %s", len(kept), len(patterns), filters)

    db = load_database(params)
    log.info("matching against %d motifs of %s", len(db), db.source)
    queries = [p.ppm[p.trim[0] : p.trim[1]].T for p in kept]
    matches = tomtom_matches(
        queries, db, correction=params["multiple_testing"], threads=threads
    )

    region_index = regions = planted = None
    if planted_tsv:
        with h5py.File(contributions, "r") as fh:
            region_index = fh["region_index"][:].astype(np.int64)
        regions = read_regions(regions_tsv)
        planted = read_planted(planted_tsv)
    table = motif_table(
        kept,
        db,
        matches,
        max_qvalue=float(params["max_qvalue"]),
        trim_threshold=filters["trim_threshold"],
        region_index=region_index,
        regions=regions,
        planted=planted,
    )

    with atomic_output(motifs_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    with atomic_output(patterns_tsv) as tmp:
        summary.to_csv(tmp, sep="\t", index=False)
    write_meme(motifs_meme, kept)

    logo_files = logos.draw_logos(kept, table, db, logos_dir)
    page = logos.motifs_html(
        table, summary, logo_files, filters=filters, database=db.source, params=params
    )
    with atomic_output(html) as tmp:
        Path(tmp).write_text(page)
    return table
