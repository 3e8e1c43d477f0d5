"""Motif discovery with TF-MoDISco-lite and matching with TomTom (memelite) against JASPAR.

Array conventions
-----------------
- Contributions come from ``results/NAME/contributions/contributions.h5`` (see
  :mod:`peak2motif.contributions`), one task at a time: one-hot and hypothetical
  contributions, each ``(N, L, 4)`` float32 in the order A, C, G, T.
- TF-MoDISco-lite's Python API, used here, takes ``(N, L, 4)``. Its command line takes
  ``(N, 4, L)`` arrays (npz key ``arr_0``); we never write those.
- A pattern's PPM and CWM are ``(W, 4)``; memelite's ``tomtom`` and ``write_meme`` take
  ``(4, W)``, so they get the transpose.

``results/NAME/motifs/TASK/modisco.h5`` is modisco-lite's own file
(``pos_patterns/pattern_i/{sequence, contrib_scores, hypothetical_contribs, seqlets/...}``,
same for ``neg_patterns``) of one task's positives, with one difference: modisco sees the
sequences in a seeded random order (its ``max_seqlets`` keeps seqlets in input order, so an
unshuffled input would keep only the first sequences), and ``seqlets/example_idx`` is mapped
to rows of ``regions.tsv``. The attribute ``example_idx`` of the file says so.

Filters, the null, and matching
-------------------------------
TF-MoDISco reports junk patterns even on noise (about 17 on noise-only input), and the
number of seqlets of junk grows with the number of sequences, so no fixed seqlet count
separates junk from motifs. A pattern is kept when

1. it has at least ``min_seqlets`` seqlets and, after trimming to the span of positions with
   at least ``trim_threshold`` bits, is at least ``min_length`` long and carries at least
   ``min_information`` bits (untrimmed junk matches JASPAR at tiny p-values);
2. it is *really there*: its hits (:mod:`peak2motif.hits`: sequence matches that carry the
   model's contribution) are more frequent in the task's positives than in the matched
   negatives that the same fold models explained — one-sided Fisher test, Benjamini-Hochberg
   over every pattern of every task, ``enrichment_qvalue`` and at least ``min_enrichment``
   times the negatives' rate.

TomTom p-values of every kept pattern against every database motif are corrected for
multiple testing (Benjamini-Hochberg), and a match is reported only when its q-value is
below ``max_qvalue``.
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
from peak2motif.sequences import BASES
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

BACKGROUND = np.full(4, 0.25)

MOTIF_COLUMNS = [
    "task",
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
    "positive_hit_fraction",
    "negative_hit_fraction",
    "enrichment",
    "enrichment_qvalue",
    "seqlet_fraction_in_planted",
    "planted_motif",
]

PATTERN_COLUMNS = [
    "task",
    "pattern",
    "sign",
    "n_seqlets",
    "trim_start",
    "trim_end",
    "length",
    "information",
    "hit_contribution",
    "positive_hit_fraction",
    "negative_hit_fraction",
    "enrichment",
    "enrichment_pvalue",
    "enrichment_qvalue",
    "kept",
    "reason",
]
NULL_COLUMNS = ["hit_contribution", "positive_hit_fraction", "negative_hit_fraction", "enrichment",
                "enrichment_pvalue", "enrichment_qvalue"]


# ---------------------------------------------------------------------------------------------
# Running TF-MoDISco-lite
# ---------------------------------------------------------------------------------------------


def run_modisco(
    onehot: np.ndarray, hypothetical: np.ndarray, *, seed: int, sliding_window_size: int = 20,
    **modisco_options,
) -> tuple[list | None, list | None, np.ndarray]:
    """Run TF-MoDISco-lite on a seeded shuffle of the sequences.

    Parameters
    ----------
    onehot, hypothetical
        ``(N, L, 4)`` float32; the window is the whole sequence (length L).
    seed
        Seed of the shuffle that decides which seqlets ``max_seqlets`` keeps.
    sliding_window_size, modisco_options
        TF-MoDISco-lite's keyword arguments (the ``motifs`` keys of :data:`MODISCO_KEYS`,
        with ``max_seqlets`` for its ``max_seqlets_per_metacluster``); the window is capped
        at the sequence length.

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
    order = np.random.default_rng(seed).permutation(n)
    if n == 0 or not np.any(hypothetical):
        log.warning("no sequence or all hypothetical contributions zero: no seqlet can be "
                    "found")
        return None, None, order
    options = dict(modisco_options)
    if "max_seqlets" in options:
        options["max_seqlets_per_metacluster"] = options.pop("max_seqlets")
    log.info("TF-MoDISco-lite on %d sequences of %d bp (window = sequence length)", n, length)
    pos, neg = TFMoDISco(
        one_hot=np.ascontiguousarray(onehot[order], dtype=np.float32),
        hypothetical_contribs=np.ascontiguousarray(hypothetical[order], dtype=np.float32),
        sliding_window_size=min(sliding_window_size, length),
        **options,
    )
    return pos, neg, order


MODISCO_KEYS = (
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


def write_modisco(
    path: str | Path, pos_patterns, neg_patterns, rows: np.ndarray, window: int
) -> None:
    """Save modisco's result with ``seqlets/example_idx`` mapped to ``rows`` (regions.tsv
    rows of the sequences modisco saw, in its order)."""
    from modiscolite.io import save_hdf5

    with atomic_output(path) as tmp:
        save_hdf5(str(tmp), pos_patterns, neg_patterns, window)
        # save_hdf5 leaves its h5py.File to the garbage collector; close it before reopening.
        gc.collect()
        with h5py.File(tmp, "r+") as fh:
            fh.attrs["example_idx"] = "row of regions.tsv (modisco ran on a seeded shuffle)"

            def remap(name, obj):
                if isinstance(obj, h5py.Dataset) and name.endswith("seqlets/example_idx"):
                    obj[...] = rows[obj[...]]

            fh.visititems(remap)


def discover_motifs(
    contributions: str | Path, modisco_h5: str | Path, params: dict, task: str,
    threads: int = 1
) -> None:
    """Rule ``discover_motifs``: one task's positives in contributions.h5 -> modisco.h5."""
    import numba
    from modiscolite import precompile

    from peak2motif.contributions import read_task

    # TF-MoDISco-lite compiles its numba kernels into the cache in forked children, but only
    # while forking is safe: before numba's OpenMP pool starts. Started after
    # set_num_threads, it compiled every kernel in this process on every run (13-15 s of the
    # demo's 25 s job) and cached none.
    precompile.start()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    c = read_task(contributions, task, positives_only=True)
    params = with_defaults("motifs", params)
    pos, neg, order = run_modisco(c.onehot, c.hypothetical, seed=params["seed"],
                                  **{k: params[k] for k in MODISCO_KEYS})
    write_modisco(modisco_h5, pos, neg, c.region_index[order], window=c.onehot.shape[1])
    log.info("%s: modisco found %d positive and %d negative patterns in %d sequences", task,
             len(pos or []), len(neg or []), len(c.onehot))


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
    task: str = ""

    @property
    def n_seqlets(self) -> int:
        return len(self.seqlets)

    @property
    def sign_value(self) -> int:
        return 1 if self.sign == "positive" else -1


def load_patterns(path: str | Path, task: str = "") -> list[Pattern]:
    """Read every top-level pattern of a modisco.h5 (positive first, in modisco's order).

    Names are ``TASK.pos_patterns.pattern_i`` (unique over the tasks of a dataset);
    ``example_idx`` of the seqlets are rows of regions.tsv.
    """
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
                        name=f"{task}.{group}.{name}" if task else f"{group}.{name}",
                        task=task,
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


def seqlet_information(ppm: np.ndarray, n_seqlets: int, pseudocount: float) -> np.ndarray:
    """Bits per position of a pattern's PPM ``(W, 4)`` from its base counts (PPM x seqlets)
    plus ``pseudocount`` per base: a pattern of few seqlets needs more skew in a column for it
    to count as informative (25 seqlets with counts 2, 3, 3, 17: 0.59 bits as a PPM, 0.45
    counted), so weakly skewed flanks are trimmed away."""
    counts = np.asarray(ppm, dtype=np.float64) * n_seqlets + pseudocount
    p = counts / counts.sum(axis=1, keepdims=True)
    return (p * np.log2(p / BACKGROUND)).sum(axis=1)


def filter_patterns(
    patterns: list[Pattern],
    *,
    min_seqlets: int,
    trim_threshold: float,
    min_length: int,
    min_information: float,
    trim_pseudocount: float = 1.0,
) -> pd.DataFrame:
    """Trim every pattern and decide which are kept; sets ``pattern.trim`` and ``pattern.ic``.

    Returns one row per pattern (columns :data:`PATTERN_COLUMNS`) saying why a pattern was
    dropped, so the report can show what TF-MoDISco found and what the filters removed.
    """
    rows = []
    for p in patterns:
        p.ic = seqlet_information(p.ppm, p.n_seqlets, trim_pseudocount)
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
                "task": p.task,
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


def null_calibration(patterns: list[Pattern], contributions, site_score: float,
                     quantile: float) -> pd.DataFrame:
    """Hit rates of each (trimmed) pattern in a task's positives and matched negatives.

    Parameters
    ----------
    patterns
        Patterns of one task, trimmed by :func:`filter_patterns`; their seqlets'
        ``example_idx`` are regions.tsv rows.
    contributions
        The task's :class:`peak2motif.contributions.TaskContributions` (positives and the
        explained negatives).
    site_score
        Relative log-odds score a sequence window needs to count as a site.
    quantile
        A hit's contribution must reach this quantile of the pattern's seqlets'
        contributions (:func:`peak2motif.hits.seqlet_threshold`).

    Returns
    -------
    One row per pattern: ``pattern``, ``hit_contribution`` and :data:`NULL_COLUMNS` but
    the q-value (NaN when there are no negatives or the pattern was not trimmed).
    """
    from peak2motif import hits

    background = hits.base_composition(contributions.onehot)
    actual = contributions.actual
    pos = contributions.positive
    row_of = pd.Series(np.arange(len(contributions.region_index)),
                       index=contributions.region_index)
    rows = []
    for p in patterns:
        row = {"pattern": p.name}
        if p.trim is not None and pos.any() and (~pos).any():
            t0, t1 = p.trim
            s = p.seqlets
            where = row_of.reindex(s["example_idx"].to_numpy()).to_numpy()
            ok = np.isfinite(where)
            starts = np.where(s["is_revcomp"], s["end"] - t1, s["start"] + t0)
            tau = hits.seqlet_threshold(actual, where[ok].astype(np.int64), starts[ok],
                                        t1 - t0, p.sign_value, quantile)
            scanned = hits.scan(p.ppm[t0:t1], contributions.onehot, actual, background)
            has = hits.hit_mask(scanned, site_score, p.sign_value, tau).any(1)
            row.update(hit_contribution=tau, **hits.enrichment(has[pos], has[~pos],
                                                               p.sign_value))
        rows.append(row)
    return pd.DataFrame(rows, columns=["pattern", *NULL_COLUMNS[:-1]])


def apply_null(summary: pd.DataFrame, null: pd.DataFrame, *, max_qvalue: float,
               min_enrichment: float) -> pd.DataFrame:
    """Add the null's columns to the pattern summary and drop what it does not support.

    Benjamini-Hochberg runs over every pattern that reached the test (all tasks together).
    A pattern stays kept only with ``enrichment_qvalue < max_qvalue`` and
    ``enrichment >= min_enrichment``; without negatives (``attribution: negatives_ratio:
    0``) the null is skipped and said so.
    """
    out = summary.drop(columns=NULL_COLUMNS, errors="ignore").merge(null, on="pattern",
                                                                    how="left")
    tested = out["kept"] & out["enrichment_pvalue"].notna()
    out["enrichment_qvalue"] = np.nan
    out.loc[tested, "enrichment_qvalue"] = benjamini_hochberg(
        out.loc[tested, "enrichment_pvalue"].to_numpy())
    for i in np.flatnonzero(out["kept"].to_numpy()):
        r = out.iloc[i]
        if not np.isfinite(r["enrichment_pvalue"]):
            continue
        if not r["enrichment_qvalue"] < max_qvalue:
            reason = (f"hits not enriched over matched negatives (q = "
                      f"{r['enrichment_qvalue']:.2g} >= {max_qvalue})")
        elif not r["enrichment"] >= min_enrichment:
            reason = f"enrichment {r['enrichment']:.2f} < min_enrichment {min_enrichment}"
        else:
            continue
        out.iloc[i, out.columns.get_loc("kept")] = False
        out.iloc[i, out.columns.get_loc("reason")] = reason
    return out[PATTERN_COLUMNS]


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


def seqlet_intervals(pattern: Pattern, regions: pd.DataFrame) -> pd.DataFrame:
    """Genome intervals (chrom, start, end; 0-based half-open) of a pattern's trimmed seqlets.

    ``example_idx`` of the seqlets are rows of ``regions``. A seqlet on the reverse strand
    covers pattern column j at sequence position end - 1 - j, so its trimmed core
    ``[t0, t1)`` is ``[end - t1, end - t0)``.
    """
    t0, t1 = pattern.trim if pattern.trim else (0, len(pattern.ppm))
    s = pattern.seqlets
    rc = s["is_revcomp"].to_numpy()
    start = np.where(rc, s["end"] - t1, s["start"] + t0)
    end = np.where(rc, s["end"] - t0, s["start"] + t1)
    reg = regions.iloc[s["example_idx"].to_numpy()]
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
    summary: pd.DataFrame,
    db: MotifDatabase,
    matches: dict[str, np.ndarray],
    *,
    max_qvalue: float,
    trim_threshold: float,
    regions: pd.DataFrame | None = None,
    planted: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per kept pattern (columns :data:`MOTIF_COLUMNS`).

    ``summary`` (from :func:`apply_null`) gives the null's columns. ``pvalue``/``qvalue``
    are those of the best database motif whether or not it passes; ``match_*`` are filled
    only when ``qvalue < max_qvalue``. With a truth table, ``seqlet_fraction_in_planted`` is
    the fraction of the pattern's trimmed seqlets that overlap a planted instance, and
    ``planted_motif`` the motif_id most of them overlap.
    """
    null = summary.set_index("pattern")
    rows = []
    for i, p in enumerate(kept):
        t0, t1 = p.trim
        row = dict.fromkeys(MOTIF_COLUMNS, None)
        row.update(
            task=p.task,
            pattern=p.name,
            sign=p.sign,
            n_seqlets=p.n_seqlets,
            consensus=consensus(p.ppm[t0:t1], p.ic[t0:t1], trim_threshold),
            length=t1 - t0,
            information=round(float(p.ic[t0:t1].sum()), 3),
            **{c: null.loc[p.name, c] for c in ("positive_hit_fraction",
                                                 "negative_hit_fraction", "enrichment",
                                                 "enrichment_qvalue")},
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
        if planted is not None and regions is not None:
            hit, which = overlap_planted(seqlet_intervals(p, regions), planted)
            row["seqlet_fraction_in_planted"] = round(float(hit.mean()), 4) if len(hit) else 0.0
            ids = pd.Series(which[hit])
            row["planted_motif"] = ids.mode().iloc[0] if len(ids) else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=MOTIF_COLUMNS)


def write_meme(path: str | Path, kept: list[Pattern]) -> None:
    """The trimmed PPMs of the kept patterns as a MEME file (minimal MEME format 4).

    Hand-written: memelite's ``write_meme`` writes ``nsites= 1`` and a ``URL BLANK`` line for
    every motif; here ``nsites`` is the pattern's seqlet count (tools that add pseudocounts
    by site count, such as FIMO and TomTom, weigh the matrix correctly) and there is no URL.
    ``memelite.io.read_meme`` reads it back with the pattern names as keys.
    """
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for p in kept:
        t0, t1 = p.trim
        ppm = np.asarray(p.ppm[t0:t1], dtype=np.float64)
        ppm = ppm / ppm.sum(axis=1, keepdims=True)
        lines += [f"MOTIF {p.name}",
                  f"letter-probability matrix: alength= 4 w= {len(ppm)} nsites= {p.n_seqlets}"]
        lines += [" ".join(f"{v:.6f}" for v in row) for row in ppm]
        lines.append("")
    with atomic_output(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


FILTER_KEYS = ("min_seqlets", "trim_threshold", "min_length", "min_information",
               "trim_pseudocount")


def calibrated_patterns(modisco_h5: dict[str, str | Path], contributions: str | Path,
                        params: dict) -> tuple[list[Pattern], pd.DataFrame]:
    """Every task's patterns, filtered and calibrated against its matched negatives.

    Returns all patterns (trimmed) and the pattern summary (:data:`PATTERN_COLUMNS`).
    """
    from peak2motif.contributions import read_task

    filters = {k: params[k] for k in FILTER_KEYS}
    patterns, summaries, nulls = [], [], []
    for task, path in modisco_h5.items():
        found = load_patterns(path, task)
        summaries.append(filter_patterns(found, **filters))
        kept = [p for p, k in zip(found, summaries[-1]["kept"], strict=True) if k]
        c = read_task(contributions, task)
        if not (~c.positive).any():
            log.warning("%s: no explained negatives (attribution: negatives_ratio is 0): "
                        "motif calls are not calibrated against a null", task)
        nulls.append(null_calibration(kept, c, float(params["site_score"]),
                                      float(params["hit_contribution_quantile"])))
        patterns += found
        log.info("%s: %d of %d modisco patterns pass the filters %s", task, len(kept),
                 len(found), filters)
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(
        columns=PATTERN_COLUMNS)
    null = pd.concat(nulls, ignore_index=True) if nulls else pd.DataFrame(
        columns=["pattern", *NULL_COLUMNS[:-1]])
    summary = apply_null(summary, null, max_qvalue=float(params["enrichment_qvalue"]),
                         min_enrichment=float(params["min_enrichment"]))
    return patterns, summary


def match_motifs(
    *,
    modisco_h5: dict[str, str | Path],
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
    examples_png: str | Path | None = None,
) -> pd.DataFrame:
    """Rule ``match_motifs``: filter, calibrate against the null, TomTom, truth overlap,
    table, MEME, logos, an example track per motif (``examples_png``), HTML. ``modisco_h5``
    maps each task to its modisco.h5."""
    from peak2motif import logos
    from peak2motif.regions import read_regions

    params = with_defaults("motifs", params)
    patterns, summary = calibrated_patterns(modisco_h5, contributions, params)
    kept = [p for p, k in zip(patterns, summary["kept"], strict=True) if k]
    log.info("%d of %d patterns kept over all tasks", len(kept), len(patterns))
    db = load_database(params)
    log.info("matching against %d motifs of %s", len(db), db.source)
    matches = tomtom_matches([p.ppm[p.trim[0]:p.trim[1]].T for p in kept], db,
                             correction=params["multiple_testing"], threads=threads)
    regions = read_regions(regions_tsv)
    table = motif_table(kept, summary, db, matches, max_qvalue=float(params["max_qvalue"]),
                        trim_threshold=float(params["trim_threshold"]), regions=regions,
                        planted=read_planted(planted_tsv) if planted_tsv else None)
    with atomic_output(motifs_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    with atomic_output(patterns_tsv) as tmp:
        summary.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    write_meme(motifs_meme, kept)
    figures = logos.draw_logos(kept, table, db, logos_dir, matches,
                               max_qvalue=float(params["max_qvalue"]))
    if examples_png:
        logos.draw_examples(kept, table, contributions, regions, examples_png)
    page = logos.motifs_html(table, summary, figures, tasks=list(modisco_h5),
                             database=db.source, params=params, examples=examples_png)
    with atomic_output(html) as tmp:
        Path(tmp).write_text(page)
    return table
