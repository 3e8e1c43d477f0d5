"""Variant effects: SNVs in (or near) peaks, scored by the fold model that never saw them.

Accepted VCF
------------
VCF 4.x, plain or bgzip (read with pysam; no index needed; plain gzip is refused with the
fix, as htslib cannot read it). Only CHROM, POS, ID, REF and ALT are read; FILTER, INFO and
samples are ignored, so every record is scored whatever its filter. Per record:

- a CHROM that is not in the genome FASTA is an error (with the ``chr``-prefix hint);
- a multi-allelic record is split into one SNV per ALT;
- an ALT that is not a single A/C/G/T against a single-base REF (indels, MNVs, symbolic
  ``<DEL>``, ``*``, a missing ``.``) is skipped and counted (``skipped_indel``,
  ``skipped_other``, ``skipped_no_alt``), in the log and in the summary;
- a REF that is not the genome's base at POS is an error naming the record and the base;
- a repeated (CHROM, POS, REF, ALT) is scored once and counted (``duplicates``).

Which window and which model
----------------------------
An SNV inside a peak window (``kind == "peak"`` rows of ``regions.tsv``) is scored in that
window, as the attribution stage explained it (with overlapping windows: the one whose
centre is nearest). An SNV at most ``variants: max_distance`` bp from a window's edge is
scored in a window of the same length re-centred on it (clamped to the chromosome), and
belongs to the nearest window's region; the others are counted as ``outside_peaks``. The
nearest window's region gives the fold: with several folds each region is in the test split
of exactly one fold, and that fold's model (which never saw the region) scores the SNV. With
one fold there is one model, and ``scored_in_training_regions`` in the summary counts the
SNVs whose region that model trained on.

What is measured (per SNV and task)
-----------------------------------
- ``ref_pred``, ``alt_pred``: model outputs (after the output activation) for the window
  with each allele, averaged over both strands (the window and its reverse complement).
- ``lfc``: ``log2((alt + eps) / (ref + eps))`` (``eps`` = ``variants: pseudocount``) for
  outputs that cannot be negative (sigmoid, softmax, softplus, relu, exponential). For a
  linear output (regression of ``log1p(signalValue)``) it is ``(alt - ref) / ln 2``: the
  log2 fold change of ``1 + signal``.
- ``contribution_change``: sum over the window of ``|actual contributions|`` with the alt
  allele minus with the ref allele; ``position_contribution_change``: the contribution of the
  alt base at the variant minus that of the ref base. Contributions come from
  :func:`peak2motif.explain.explain` with the dataset's attribution method, forward strand
  (as the attribution stage, so they are comparable with ``contributions.h5`` and with the
  motif stage's hit thresholds), and both alleles share the references the stage makes for
  the region (:func:`peak2motif.attribution.references`, dinucleotide shuffles seeded by
  (seed, region row), shuffled from the ref window): for an SNV in a peak window they are
  exactly the stage's references, and with a shared reference the change of the (signed)
  summed contributions equals the change of the logit, with no reference noise. (A fixed ``gc``
  reference takes the GC fraction of the fold's scored windows.)
- ``motif_hit``: the reported patterns (``motifs.tsv``) of the task with a hit
  (:mod:`peak2motif.hits`: a site match at ``motifs: site_score`` carrying at least the
  pattern's ``hit_contribution`` from ``patterns.tsv``) on the ref window that overlaps the
  variant, ``PATTERN (MATCH)``, several ``;``-separated strongest first; empty when none.
- ``pvalue``: empirical, against ``variants: null_per_variant`` matched random substitutions
  per SNV, drawn (seeded) in the same window at positions with the same trinucleotide (ref
  base and both neighbours) to the same alt base, else the same ref base, else any base
  (the summary counts each level). The draws of all SNVs form one null per task, and
  ``p = (1 + #null with |lfc| >= |lfc|) / (1 + n_null)`` (ties within 1e-6, float32
  round-off, count); ``qvalue`` is Benjamini-Hochberg over every SNV x task.

Outputs
-------
``variants.tsv`` (:data:`VARIANT_COLUMNS`, one row per SNV x task, ``pos`` 1-based as in the
VCF, ``distance`` 0 inside a peak window), ``summary.tsv`` (metric, value), a PNG of ref and
alt contribution logos around the top variants, and an HTML page for the report; each goes
through :func:`peak2motif.utils.atomic_output`, and all are renamed into place only after all
were written.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from peak2motif.errors import InputError
from peak2motif.sequences import BASES, N_CODE, encode, one_hot
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

VARIANT_COLUMNS = [
    "chrom", "pos", "ref", "alt", "id", "region", "fold", "task", "ref_pred", "alt_pred",
    "lfc", "contribution_change", "position_contribution_change", "motif_hit", "pvalue",
    "qvalue", "distance",
]
SKIP_REASONS = {
    "skipped_indel": "indel or multi-base ALT(s) skipped",
    "skipped_other": "symbolic or non-ACGT ALT(s), or ALT equal to REF, skipped",
    "skipped_no_alt": "record(s) without an ALT skipped",
    "duplicates": "repeated SNV(s) scored once",
}
NONNEGATIVE_OUTPUTS = ("sigmoid", "softmax", "softplus", "relu", "exponential",
                       "hard_sigmoid")
NULL_LEVELS = ("trinucleotide", "base", "any")
MISSING = np.iinfo(np.int64).min


# --- reading the VCF ---------------------------------------------------------------------


def _vcf_chr_hint(chrom: str, known: set[str]) -> str:
    rename = ("rename them with `bcftools annotate --rename-chrs MAP.txt` (MAP.txt: one "
              "'old new' pair per line)")
    if chrom.startswith("chr") and chrom[3:] in known:
        return f"the genome names chromosomes without the 'chr' prefix ({chrom[3:]}): {rename}"
    if "chr" + chrom in known:
        return f"the genome names chromosomes with a 'chr' prefix (chr{chrom}): {rename}"
    sample = ", ".join(sorted(known)[:5])
    return (f"use the genome's chromosome names ({sample}, ...), or drop this chromosome's "
            f"records (`bcftools view -t ^{chrom}`)")


def _header_lines(path: Path) -> int:
    """Lines before the first record (bgzip is gzip to Python), to name records by line."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    n = 0
    with opener(path, "rt", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n += 1
    return n


@dataclass
class VariantCalls:
    """The SNVs of a VCF and what was skipped.

    ``snvs`` has columns chrom, pos (1-based), ref, alt, id, line (of the VCF), one row per
    (record, ALT), in file order; ``counts`` has ``records`` (data lines read), ``snvs``
    (rows kept), ``multiallelic_records`` and each of :data:`SKIP_REASONS`.
    """

    snvs: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def _open_vcf(path: Path):
    import pysam

    try:
        return pysam.VariantFile(str(path))
    except (ValueError, OSError, NotImplementedError) as err:
        with open(path, "rb") as fh:
            start = fh.read(14)
        if start[:2] == b"\x1f\x8b" and start[12:14] != b"BC":
            raise InputError("the VCF is compressed with gzip, not bgzip", path=str(path),
                             fix=f"recompress it: `gunzip -c {path} | bgzip > "
                                 f"{path.stem}.bgz.vcf.gz`") from None
        raise InputError(f"cannot read the file as VCF ({err})", path=str(path),
                         fix="give a VCF, plain or compressed with bgzip") from None


def _check_record(rec, fasta, lengths: dict[str, int], path: Path, line: int,
                  where: str) -> None:
    """The record's chromosome, position and REF against the genome."""
    if rec.chrom not in lengths:
        raise InputError(f"{where}: chromosome '{rec.chrom}' is not in the genome FASTA",
                         path=str(path), line=line, fix=_vcf_chr_hint(rec.chrom, set(lengths)))
    if rec.pos > lengths[rec.chrom]:
        raise InputError(f"{where}: position {rec.pos} is past the end of {rec.chrom} "
                         f"({lengths[rec.chrom]:,} bp)", path=str(path), line=line,
                         fix="the VCF and the genome must be the same assembly")
    ref = (rec.ref or "").upper()
    if set(ref) <= set(BASES):
        end = min(rec.pos + len(ref) - 1, lengths[rec.chrom])
        genome_ref = fasta.faidx.fetch(rec.chrom, rec.pos, end).upper()
        if ref[:len(genome_ref)] != genome_ref:
            raise InputError(
                f"{where}: REF {ref} does not match the genome, which has {genome_ref} at "
                f"{rec.chrom}:{rec.pos}", path=str(path), line=line,
                fix="the VCF and the genome must be the same assembly (check the build, e.g. "
                    "hg19 against hg38); POS is 1-based; `bcftools norm --check-ref w -f "
                    "GENOME` lists every mismatch")


def _alleles(rec, counts: dict, seen: set, line: int) -> list[tuple]:
    """One SNV row per ALT of a record; indels, symbolic alleles and repeats are counted."""
    ref = (rec.ref or "").upper()
    alts = [a.upper() for a in (rec.alts or ())]
    if not alts or alts == ["."]:
        counts["skipped_no_alt"] += 1
        return []
    if len(alts) > 1:
        counts["multiallelic_records"] += 1
    rows = []
    for alt in alts:
        if not (len(ref) == 1 and ref in BASES and len(alt) == 1 and alt in BASES):
            symbolic = alt.startswith("<") or alt in ("*", ".") or not set(ref + alt) <= set(
                BASES)
            counts["skipped_other" if symbolic else "skipped_indel"] += 1
            continue
        key = (rec.chrom, rec.pos, ref, alt)
        if alt == ref:
            counts["skipped_other"] += 1
        elif key in seen:
            counts["duplicates"] += 1
        else:
            seen.add(key)
            rows.append((rec.chrom, rec.pos, ref, alt, rec.id or ".", line))
    return rows


def read_vcf(path: str | os.PathLike, genome: str | os.PathLike) -> VariantCalls:
    """Read the SNVs of a VCF (plain or bgzip) and check each REF against the genome.

    Raises
    ------
    InputError
        The file is missing or not a VCF; a record's CHROM is not in the genome or its POS is
        past the chromosome's end; a REF is not the genome's base (the message names the
        file, the line and record, and the genome's base).
    """
    import pysam

    from peak2motif.genome import open_fasta

    path = Path(path)
    if not path.exists():
        raise InputError("VCF not found", path=str(path),
                         fix="check 'datasets: NAME: variants' in your config (relative paths "
                             "start at the working directory)")
    head = _header_lines(path)
    counts = dict.fromkeys(("records", "snvs", "multiallelic_records", *SKIP_REASONS), 0)
    rows, seen = [], set()
    fasta = open_fasta(genome)
    verbosity = pysam.set_verbosity(0)  # htslib warns once per contig missing from the header
    try:
        lengths = {name: len(rec) for name, rec in fasta.records.items()}
        with _open_vcf(path) as vcf:
            records = iter(vcf)
            while True:
                line = head + counts["records"] + 1
                try:
                    rec = next(records)
                except StopIteration:
                    break
                except (ValueError, OSError) as err:
                    raise InputError(f"malformed record ({err})", path=str(path), line=line,
                                     fix="each data line needs CHROM, POS, ID, REF, ALT, QUAL, "
                                         "FILTER, INFO, tab-separated") from None
                counts["records"] += 1
                _check_record(rec, fasta, lengths, path, line,
                              f"record {counts['records']} ({rec.chrom}:{rec.pos})")
                rows += _alleles(rec, counts, seen, line)
    finally:
        pysam.set_verbosity(verbosity)
        fasta.close()
    counts["snvs"] = len(rows)
    log.info("%s: %d records, %d SNVs (%d multi-allelic records split)", path.name,
             counts["records"], len(rows), counts["multiallelic_records"])
    for reason, what in SKIP_REASONS.items():
        if counts[reason]:
            log.info("%s: %d %s", path.name, counts[reason], what)
    snvs = pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt", "id", "line"])
    return VariantCalls(snvs, counts)


def check_vcf(path: str | os.PathLike, genome: str | os.PathLike, out_tsv) -> dict[str, int]:
    """Read the VCF as the variant stage will, before any training, and write its counts.

    :func:`read_vcf` checks every record's CHROM, POS and REF against the genome, so a VCF of
    another build or chromosome naming stops the run here, by file and line, not after
    training, attribution and TF-MoDISco. ``out_tsv`` has columns metric, value (the counts
    of :class:`VariantCalls`).
    """
    calls = read_vcf(path, genome)
    with atomic_output(out_tsv) as tmp:
        pd.DataFrame(list(calls.counts.items()), columns=["metric", "value"]).to_csv(
            tmp, sep="\t", index=False)
    return calls.counts


# --- windows and folds -------------------------------------------------------------------


def fold_of_regions(regions: pd.DataFrame) -> np.ndarray:
    """``(N,)`` int: the fold whose test split holds each region (0 with one fold).

    Raises
    ------
    InputError
        With several folds, when a region is in no fold's test split.
    """
    from peak2motif.regions import split_columns

    cols = split_columns(regions)
    if len(cols) == 1:
        return np.zeros(len(regions), dtype=np.int64)
    is_test = regions[cols].to_numpy() == "test"
    if not is_test.any(1).all():
        bad = regions["name"].to_numpy()[~is_test.any(1)][0]
        raise InputError(f"region {bad} is in no fold's test split", path="regions.tsv",
                         fix="regions.tsv is written by prepare_regions; rerun that rule")
    return is_test.argmax(1).astype(np.int64)


def assign_windows(snvs: pd.DataFrame, regions: pd.DataFrame, lengths: dict[str, int],
                   max_distance: int) -> pd.DataFrame:
    """The window, region and fold of each SNV (-1 and empty for SNVs that are not scored).

    Parameters
    ----------
    snvs
        Columns chrom, pos (1-based).
    regions
        ``regions.tsv``; only ``kind == "peak"`` rows are used. Windows have one length.

    Returns
    -------
    ``snvs`` with region_row (row of ``regions``, or -1 for an SNV farther than
    ``max_distance``), region (name), fold, start, end (0-based window) and distance (bp
    from the nearest peak window's edge, 0 inside).
    """
    out = snvs.copy()
    n = len(out)
    out["region_row"] = -1
    out["region"] = ""
    out["fold"] = -1
    out["start"] = out["end"] = 0
    out["distance"] = -1
    peaks = regions[regions["kind"] == "peak"]
    if not n or peaks.empty:
        return out
    width = int((peaks["end"] - peaks["start"]).iloc[0])
    folds = fold_of_regions(regions)
    pos0 = out["pos"].to_numpy(np.int64) - 1
    row = np.full(n, -1, np.int64)
    dist = np.full(n, -1, np.int64)
    # Every window has the same length, so the nearest window (fewest bp to its edge) is the
    # one with the nearest centre: a sorted search per chromosome does it without temp files.
    for chrom, group in peaks.groupby("chrom", sort=False):
        at = np.flatnonzero(out["chrom"].to_numpy() == chrom)
        if not len(at):
            continue
        centre = ((group["start"] + group["end"]) // 2).to_numpy(np.int64)
        order = np.argsort(centre, kind="stable")
        centre, idx = centre[order], group.index.to_numpy()[order]
        k = np.searchsorted(centre, pos0[at])
        left, right = np.clip(k - 1, 0, len(centre) - 1), np.clip(k, 0, len(centre) - 1)
        pick = np.where(np.abs(centre[right] - pos0[at]) < np.abs(centre[left] - pos0[at]),
                        right, left)
        starts = regions.loc[idx[pick], "start"].to_numpy(np.int64)
        ends = regions.loc[idx[pick], "end"].to_numpy(np.int64)
        d = np.maximum(np.maximum(starts - pos0[at], pos0[at] - (ends - 1)), 0)
        row[at], dist[at] = idx[pick], d
    keep = (row >= 0) & (dist <= max_distance)
    row[~keep] = -1
    pos_in = regions.index.get_indexer(row[keep])
    start = regions["start"].to_numpy(np.int64)[pos_in]
    inside = dist[keep] == 0
    chrom_len = out["chrom"][keep].map(lengths).to_numpy(np.int64)
    recentred = np.clip(pos0[keep] - width // 2, 0, np.maximum(chrom_len - width, 0))
    start = np.where(inside, start, recentred)
    out.loc[keep, "region_row"] = pos_in
    out.loc[keep, "region"] = regions["name"].to_numpy()[pos_in]
    out.loc[keep, "fold"] = folds[pos_in]
    out.loc[keep, "start"] = start
    out.loc[keep, "end"] = start + width
    out["distance"] = np.where(keep, dist, -1)
    return out


# --- predictions and effects -------------------------------------------------------------


def predict_both_strands(model, codes: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Model outputs averaged over each sequence and its reverse complement.

    Parameters
    ----------
    codes
        ``(N, L)`` uint8.

    Returns
    -------
    ``(N, T)`` float32, after the output activation.
    """
    import keras

    n_out = int(model.output_shape[-1])
    out = np.empty((len(codes), n_out), np.float32)
    for lo in range(0, len(codes), batch_size):
        x = one_hot(codes[lo:lo + batch_size])
        fwd = keras.ops.convert_to_numpy(model(x, training=False))
        rev = keras.ops.convert_to_numpy(model(x[:, ::-1, ::-1].copy(), training=False))
        out[lo:lo + batch_size] = (fwd + rev) / 2
    return out


def model_output_activation(model) -> str:
    """Name of the activation of the model's last layer (``linear`` when it has none)."""
    act = model.layers[-1].get_config().get("activation", "linear")
    return act if isinstance(act, str) else str(act.get("config", {}).get("name", act))


def log_fold_change(ref: np.ndarray, alt: np.ndarray, activation: str,
                    pseudocount: float) -> np.ndarray:
    """The effect of each SNV: log2 fold change of the output (see the module docstring).

    ``ref``, ``alt`` are ``(..., T)``; the result has their shape.
    """
    ref, alt = np.asarray(ref, np.float64), np.asarray(alt, np.float64)
    if activation in NONNEGATIVE_OUTPUTS:
        return np.log2((alt + pseudocount) / (ref + pseudocount))
    return (alt - ref) / math.log(2)


def effect_definition(activation: str, pseudocount: float) -> str:
    """One sentence on how ``lfc`` was computed, for the summary and the report."""
    if activation in NONNEGATIVE_OUTPUTS:
        return f"log2((alt + {pseudocount:g}) / (ref + {pseudocount:g})) of the {activation} output"
    return (f"(alt - ref) / ln 2 of the {activation} output (regression of log1p(signal)): "
            "the log2 fold change of 1 + signal")


# --- the null of matched random substitutions --------------------------------------------


def null_substitutions(windows: np.ndarray, window_of: np.ndarray, offset: np.ndarray,
                       alt: np.ndarray, n: int, seeds: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """``n`` matched random substitutions per SNV, in the SNV's own window.

    A draw is a position of the window other than the SNV's, with the SNV's trinucleotide
    (its base and both neighbours) if the window has one, else with its base, else any
    A/C/G/T base other than ``alt``; the draw changes that position to ``alt``. Positions are
    drawn with replacement.

    Parameters
    ----------
    windows
        ``(W, L)`` uint8 ref windows.
    window_of, offset, alt
        ``(V,)`` each SNV's window, position in it and alt code.
    seeds
        ``(V, S)`` int: the entropy of each SNV's generator (the stage uses (seed, chromosome,
        position, alt), so an SNV's draws do not depend on the other records of the VCF).

    Returns
    -------
    ``(V * n,)`` window, offset and alt code of each draw (SNV by SNV), and the number of
    SNVs matched at each of :data:`NULL_LEVELS`.
    """
    length = windows.shape[1]
    levels = dict.fromkeys(NULL_LEVELS, 0)
    w_out = np.repeat(window_of, n)
    p_out = np.empty(len(window_of) * n, np.int64)
    inner = np.zeros(length, bool)
    inner[1:-1] = True
    for v, (w, p, a) in enumerate(zip(window_of, offset, alt, strict=True)):
        seq = windows[w]
        others = np.arange(length) != p
        candidates, level = np.zeros(0, np.int64), "trinucleotide"
        if inner[p]:
            same3 = inner.copy()
            same3[1:-1] &= ((seq[:-2] == seq[p - 1]) & (seq[1:-1] == seq[p])
                            & (seq[2:] == seq[p + 1]))
            candidates = np.flatnonzero(same3 & others)
        if not len(candidates):
            candidates, level = np.flatnonzero((seq == seq[p]) & others), "base"
        if not len(candidates):
            candidates = np.flatnonzero((seq != N_CODE) & (seq != a) & others)
            level = "any"
        levels[level] += 1
        rng = np.random.default_rng([int(x) for x in seeds[v]])
        p_out[v * n:(v + 1) * n] = rng.choice(candidates, n) if len(candidates) else p
    return w_out, p_out, np.repeat(alt, n).astype(np.uint8), levels


def empirical_pvalues(observed: np.ndarray, null: np.ndarray, tolerance: float = 1e-6
                      ) -> np.ndarray:
    """``p = (1 + #null with |e| >= |observed|) / (1 + n_null)`` for each observed effect.

    ``observed`` is ``(V,)``, ``null`` ``(M,)``; NaN effects get NaN. A null effect within
    ``tolerance`` below ``|observed|`` counts as at least as extreme: float32 predictions
    differ by about 1e-7 between batch sizes, and many substitutions change nothing at all.
    """
    obs = np.abs(np.asarray(observed, np.float64))
    ref = np.sort(np.abs(np.asarray(null, np.float64)[np.isfinite(null)]))
    at_least = len(ref) - np.searchsorted(ref, obs - tolerance, side="left")
    p = (1.0 + at_least) / (1.0 + len(ref))
    return np.where(np.isfinite(obs), p, np.nan)


# --- motif hits --------------------------------------------------------------------------


@dataclass
class ReportedPattern:
    """A reported pattern as the variant stage scans it: trimmed PPM ``(W, 4)``."""

    task: str
    name: str
    label: str
    ppm: np.ndarray
    sign: int
    threshold: float


def reported_patterns(motifs_tsv, patterns_tsv, modisco: dict[str, str | os.PathLike]
                      ) -> list[ReportedPattern]:
    """The patterns of ``motifs.tsv``, trimmed and thresholded as in ``patterns.tsv``.

    ``modisco`` maps each task to its ``modisco.h5`` (the PPMs).
    """
    from peak2motif.motifs import load_patterns

    motifs = pd.read_csv(motifs_tsv, sep="\t")
    summary = pd.read_csv(patterns_tsv, sep="\t").set_index("pattern")
    out = []
    for task, path in modisco.items():
        wanted = motifs[motifs["task"].astype(str) == str(task)]
        if wanted.empty:
            continue
        match = dict(zip(wanted["pattern"], wanted.get("match_name", pd.Series(
            [None] * len(wanted), index=wanted.index)), strict=True))
        for p in load_patterns(path, task):
            if p.name not in match or p.name not in summary.index:
                continue
            s = summary.loc[p.name]
            t0, t1 = int(s["trim_start"]), int(s["trim_end"])
            tau = float(s["hit_contribution"]) if pd.notna(s["hit_contribution"]) else 0.0
            m = match[p.name]
            label = f"{p.name} ({m})" if isinstance(m, str) and m and m != "NA" else p.name
            out.append(ReportedPattern(task, p.name, label, p.ppm[t0:t1], p.sign_value, tau))
    return out


def motif_hits(patterns: list[ReportedPattern], onehot: np.ndarray, actual: np.ndarray,
               window_of: np.ndarray, offset: np.ndarray, site_score: float) -> list[str]:
    """The patterns with a hit on each SNV's ref window that covers the SNV.

    Parameters
    ----------
    patterns
        One task's reported patterns.
    onehot, actual
        ``(W, L, 4)`` ref windows and their contributions (observed bases) for that task.
    window_of, offset
        ``(V,)`` each SNV's window and position in it.

    Returns
    -------
    ``V`` strings: the labels of the patterns hit, strongest hit first, ``;``-separated.
    """
    from peak2motif import hits

    found: list[list[tuple[float, str]]] = [[] for _ in window_of]
    if not len(window_of) or not patterns:
        return [""] * len(window_of)
    background = hits.base_composition(onehot)
    for pat in patterns:
        width = len(pat.ppm)
        scanned = hits.scan(pat.ppm, onehot, actual, background)
        mask = hits.hit_mask(scanned, site_score, pat.sign, pat.threshold)
        if not mask.any():
            continue
        for v, (w, p) in enumerate(zip(window_of, offset, strict=True)):
            lo, hi = max(0, p - width + 1), min(mask.shape[1], p + 1)
            cover = np.flatnonzero(mask[w, lo:hi]) + lo
            if len(cover):
                found[v].append((float(np.abs(scanned.contribution[w, cover]).max()),
                                 pat.label))
    return [";".join(label for _, label in sorted(f, key=lambda t: -t[0])) for f in found]


# --- the stage ---------------------------------------------------------------------------


@dataclass
class VariantScores:
    """What :func:`score_variants` computed, before anything is written.

    ``table`` has :data:`VARIANT_COLUMNS`; ``logos[i]`` holds, for row i of ``table``, the
    ref and alt contributions ``(2, 2 * flank + 1, 4)`` around the variant (zero off the
    window); ``summary`` is metric -> value.
    """

    table: pd.DataFrame
    logos: np.ndarray
    summary: dict[str, object]


def _settings(cfg: dict | None) -> dict:
    from peak2motif.config import with_defaults

    return with_defaults("variants", cfg)


def _chunks(n: int, size: int):
    for lo in range(0, n, max(1, size)):
        yield np.arange(lo, min(n, lo + size))


def score_fold(model, model_path, windows: np.ndarray, region_of_window: np.ndarray,
               window_of: np.ndarray, offset: np.ndarray, alt: np.ndarray,
               tasks: list[str], task_index: list[int], attribution: dict,
               patterns: list[ReportedPattern], site_score: float, flank: int,
               batch_size: int = 512, threads: int = 1) -> dict:
    """Predictions, contribution changes, motif hits and logo slices of one fold's SNVs.

    Parameters
    ----------
    windows
        ``(W, L)`` uint8 ref windows; ``region_of_window`` ``(W,)`` their regions.tsv rows
        (the reference seeds).
    window_of, offset, alt
        ``(V,)`` each SNV's window, position in it, alt code.
    tasks, task_index
        The explained tasks and their output columns.

    Returns
    -------
    ``window_pred`` ``(W, T_out)`` and ``alt_pred`` ``(V, T_out)`` (both strands); per
    explained task, ``(V, E)`` arrays ``contribution_change`` and
    ``position_contribution_change``, ``motif_hit`` (``V`` lists of ``E`` strings) and
    ``logos`` ``(V, E, 2, 2 * flank + 1, 4)``.
    """
    from peak2motif import explain
    from peak2motif.attribution import gc_fraction, method_options, references

    v, length, e = len(window_of), windows.shape[1], len(tasks)
    alt_codes = windows[window_of].copy()
    alt_codes[np.arange(v), offset] = alt
    out = {"window_pred": predict_both_strands(model, windows, batch_size),
           "alt_pred": predict_both_strands(model, alt_codes, batch_size),
           "contribution_change": np.zeros((v, e)),
           "position_contribution_change": np.zeros((v, e)),
           "motif_hit": [[""] * e for _ in range(v)],
           "logos": np.zeros((v, e, 2, 2 * flank + 1, 4), np.float32)}
    gc = gc_fraction(windows) if len(windows) else 0.5
    options = method_options(attribution, threads)
    for at_v in _chunks(v, int(attribution["chunk_sequences"])):
        # a chunk of SNVs and their ref windows are explained in one call per task, each
        # alt sequence with its window's references (a window split over two chunks is
        # explained twice, with the same seeded references)
        wins, local = np.unique(window_of[at_v], return_inverse=True)
        refs, _ = references(windows[wins], region_of_window[wins], attribution, gc)
        x = np.concatenate([one_hot(windows[wins]), one_hot(alt_codes[at_v])])
        r = np.concatenate([refs, refs[local]])
        at = offset[at_v]
        for j, (task, col) in enumerate(zip(tasks, task_index, strict=True)):
            res = explain.explain(model, x, r, method=attribution["method"], task_index=col,
                                  batch_size=attribution["batch_size"], **options)
            actual = res.hypothetical * x
            ref_act, alt_act = actual[:len(wins)], actual[len(wins):]
            out["contribution_change"][at_v, j] = (np.abs(alt_act).sum((1, 2))
                                                   - np.abs(ref_act[local]).sum((1, 2)))
            out["position_contribution_change"][at_v, j] = (
                alt_act[np.arange(len(at)), at].sum(-1) - ref_act[local, at].sum(-1))
            labels = motif_hits([p for p in patterns if p.task == task], x[:len(wins)],
                                ref_act, local, at, site_score)
            for k, i in enumerate(at_v):
                out["motif_hit"][i][j] = labels[k]
                lo = offset[i] - flank
                a, b = max(lo, 0), min(offset[i] + flank + 1, length)
                out["logos"][i, j, 0, a - lo:b - lo] = ref_act[local[k], a:b]
                out["logos"][i, j, 1, a - lo:b - lo] = alt_act[k, a:b]
    return out


def _variant_table(kept, tasks, task_index, ref_pred, alt_pred, change, pos_change, hit,
                   null_lfc, activation: str, eps: float):
    """The variants table (one row per SNV x task) with empirical p- and q-values; also the
    q-values ``(V, E)`` and the pooled null log-fold changes."""
    from peak2motif.motifs import benjamini_hochberg

    v, e = len(kept), len(tasks)
    lfc = log_fold_change(ref_pred, alt_pred, activation, eps)
    nulls = np.concatenate(null_lfc) if null_lfc else np.zeros((0, ref_pred.shape[1]))
    pvals = np.full((v, e), np.nan)
    for j, col in enumerate(task_index):
        pvals[:, j] = empirical_pvalues(lfc[:, col], nulls[:, col])
    qvals = benjamini_hochberg(pvals)
    cols = np.array(task_index)
    rep = np.repeat(np.arange(v), e)
    table = pd.DataFrame({
        **{c: kept[c].to_numpy()[rep] for c in ("chrom", "pos", "ref", "alt", "id", "region",
                                                "fold")},
        "task": np.tile(np.array(tasks, dtype=object), v),
        "ref_pred": ref_pred[:, cols].ravel(), "alt_pred": alt_pred[:, cols].ravel(),
        "lfc": lfc[:, cols].ravel(), "contribution_change": change.ravel(),
        "position_contribution_change": pos_change.ravel(),
        "motif_hit": [h for row in hit for h in row], "pvalue": pvals.ravel(),
        "qvalue": qvals.ravel(), "distance": kept["distance"].to_numpy()[rep]},
        columns=VARIANT_COLUMNS)
    return table, qvals, nulls


def _score_folds(kept: pd.DataFrame, genome, models, tasks, task_index, out_tasks, att,
                 patterns, site_score: float, s: dict, rank: dict, threads: int) -> tuple:
    """Score the SNVs of each fold with that fold's model: predictions, contribution changes,
    motif hits, logos, and the null's log-fold changes."""
    import keras

    v, e, n_null = len(kept), len(tasks), int(s["null_per_variant"])
    flank, eps, batch = int(s["logo_flank"]), float(s["pseudocount"]), int(s["batch_size"])
    ref_pred = np.zeros((v, len(out_tasks)))
    alt_pred = np.zeros((v, len(out_tasks)))
    change = np.zeros((v, e))
    pos_change = np.zeros((v, e))
    hit = [[""] * e for _ in range(v)]
    logos = np.zeros((v, e, 2, 2 * flank + 1, 4), np.float32)
    null_lfc: list[np.ndarray] = []
    levels = dict.fromkeys(NULL_LEVELS, 0)
    activations = set()
    for fold in sorted(set(kept["fold"])):
        rows = np.flatnonzero(kept["fold"].to_numpy() == fold)
        sub = kept.iloc[rows]
        # one window per (start, region): SNVs of the same window share its ref pass
        window_of = sub.groupby(["chrom", "start", "region_row"], sort=False).ngroup(
        ).to_numpy()
        first = np.unique(window_of, return_index=True)[1]
        windows = np.stack(list(_window_codes(genome, sub.iloc[first])))
        offset = sub["pos"].to_numpy(np.int64) - 1 - sub["start"].to_numpy(np.int64)
        alt = encode("".join(sub["alt"]))
        model = keras.models.load_model(models[fold], compile=False)
        activations.add(model_output_activation(model))
        res = score_fold(model, models[fold], windows, sub["region_row"].to_numpy()[first],
                         window_of, offset, alt, tasks, task_index, att, patterns,
                         site_score, flank, batch, threads)
        ref_pred[rows], alt_pred[rows] = res["window_pred"][window_of], res["alt_pred"]
        change[rows] = res["contribution_change"]
        pos_change[rows] = res["position_contribution_change"]
        logos[rows] = res["logos"]
        for i, r in enumerate(rows):
            hit[r] = res["motif_hit"][i]
        seeds = np.stack([np.full(len(sub), int(s["seed"])),
                          sub["chrom"].map(rank).to_numpy(np.int64),
                          sub["pos"].to_numpy(np.int64), alt.astype(np.int64)], 1)
        nw, npos, nalt, found = null_substitutions(windows, window_of, offset, alt, n_null,
                                                   seeds)
        levels = {name: levels[name] + found[name] for name in NULL_LEVELS}
        for draws in _chunks(len(nw), 16 * batch):  # bounded memory however many draws
            null_codes = windows[nw[draws]]
            null_codes[np.arange(len(draws)), npos[draws]] = nalt[draws]
            null_lfc.append(log_fold_change(res["window_pred"][nw[draws]],
                                            predict_both_strands(model, null_codes, batch),
                                            model_output_activation(model), eps))
        del model
        keras.backend.clear_session()
    return (ref_pred, alt_pred, change, pos_change, hit, logos, null_lfc, levels,
            activations)


def score_variants(
    vcf: str | os.PathLike,
    genome: str | os.PathLike,
    regions_tsv: str | os.PathLike,
    models: list[str | os.PathLike],
    *,
    settings: dict | None = None,
    attribution: dict | None = None,
    site_score: float = 0.7,
    motifs_tsv: str | os.PathLike | None = None,
    patterns_tsv: str | os.PathLike | None = None,
    modisco: dict[str, str | os.PathLike] | None = None,
    task_type: str | None = None,
    threads: int = 1,
) -> VariantScores:
    """Score every SNV of ``vcf`` in or near a peak window (see the module docstring).

    Parameters
    ----------
    models
        ``models[k]`` is fold k's ``model.keras``.
    settings
        The ``variants`` config section; ``attribution`` the dataset's attribution settings
        (method resolved; ``auto`` means deeplift); ``site_score`` is ``motifs: site_score``.
    motifs_tsv, patterns_tsv, modisco
        The motif stage's tables and each task's ``modisco.h5``; without them ``motif_hit``
        stays empty.
    task_type
        ``multiclass`` leaves the ``background`` class out of the explained tasks; None
        infers it from the columns (a ``background`` label column).

    Returns
    -------
    :class:`VariantScores`; nothing is written (:func:`write_outputs` does that).
    """
    # Over 80 lines on purpose: the steps in order (select, score per fold, table, summary),
    # most of the length being the summary's named counts.

    from peak2motif.attribution import _set_threads, explained_tasks, settings_with_defaults
    from peak2motif.genome import chromosome_lengths
    from peak2motif.regions import label_columns, read_regions, split_columns

    s = _settings(settings)
    att = settings_with_defaults(attribution)
    if att["method"] == "auto":
        att["method"] = "deeplift"
    _set_threads(threads)
    calls = read_vcf(vcf, genome)
    regions = read_regions(regions_tsv)
    lengths = chromosome_lengths(genome)
    out_tasks = label_columns(regions)
    if task_type is None:
        task_type = "multiclass" if out_tasks and out_tasks[-1] == "background" else "binary"
    tasks = explained_tasks(out_tasks, task_type)
    task_index = [out_tasks.index(t) for t in tasks]
    n_folds = len(split_columns(regions))
    if len(models) != n_folds:
        raise InputError(f"regions.tsv has {n_folds} fold(s) but {len(models)} model(s) "
                         "were given", path=str(regions_tsv),
                         fix="give every fold's model.keras, in fold order")
    kept, summary = _select_snvs(calls, regions, lengths, int(s["max_distance"]))
    rank = {c: i for i, c in enumerate(lengths)}
    patterns = (reported_patterns(motifs_tsv, patterns_tsv, modisco)
                if motifs_tsv and patterns_tsv and modisco else [])
    summary["reported_patterns"] = len(patterns)

    scored = _score_folds(kept, genome, models, tasks, task_index, out_tasks, att, patterns,
                          site_score, s, rank, threads)
    ref_pred, alt_pred, change, pos_change, hit, logos, null_lfc, levels, activations = scored
    v, e, n_null = len(kept), len(tasks), int(s["null_per_variant"])
    eps = float(s["pseudocount"])
    if len(activations) > 1:
        raise InputError(f"the fold models have different output activations "
                         f"({sorted(activations)})", path=str(models[0]),
                         fix="train every fold with the same config")
    activation = activations.pop() if activations else "sigmoid"
    table, qvals, nulls = _variant_table(kept, tasks, task_index, ref_pred, alt_pred, change,
                                         pos_change, hit, null_lfc, activation, eps)
    summary |= {f"null_matched_{name}": n for name, n in levels.items()}
    summary |= {"null_per_variant": n_null, "null_draws": len(nulls),
                "smallest_possible_pvalue": 1 / (1 + len(nulls)),
                "output_activation": activation, "lfc": effect_definition(activation, eps),
                "method": att["method"], "reference": att["reference"],
                "n_references": att["n_references"], "tasks": ",".join(tasks)}
    for j, (task, col) in enumerate(zip(tasks, task_index, strict=True)):
        summary[f"significant_q05_{task}"] = int((qvals[:, j] < 0.05).sum())
        summary[f"with_motif_hit_{task}"] = int(sum(bool(h[j]) for h in hit))
        summary[f"null_median_abs_lfc_{task}"] = (float(np.median(np.abs(nulls[:, col])))
                                                  if len(nulls) else "")
    log.info("scored %d SNVs x %d task(s); %s", v, e, ", ".join(
        f"{k} {summary[k]}" for k in summary if k.startswith("significant_q05_")))
    return VariantScores(table, logos.reshape((v * e,) + logos.shape[2:]), summary)


def _select_snvs(calls: VariantCalls, regions: pd.DataFrame, lengths: dict[str, int],
                 max_distance: int) -> tuple[pd.DataFrame, dict[str, object]]:
    """The SNVs to score (genome order) and the counts of what was kept and why."""
    from peak2motif.regions import split_columns

    snv = assign_windows(calls.snvs, regions, lengths, max_distance)
    rank = {c: i for i, c in enumerate(lengths)}
    kept = snv[snv["region_row"] >= 0]
    kept = kept.assign(_rank=kept["chrom"].map(rank)).sort_values(
        ["_rank", "pos", "alt"], kind="stable").drop(columns="_rank").reset_index(drop=True)
    summary: dict[str, object] = {**calls.counts,
                                  "outside_peaks": int((snv["region_row"] < 0).sum()),
                                  "scored": len(kept),
                                  "scored_in_peak_windows": int((kept["distance"] == 0).sum()),
                                  "scored_recentred": int((kept["distance"] > 0).sum()),
                                  "max_distance": max_distance}
    log.info("%d SNVs: %d in peak windows, %d within %d bp (re-centred), %d farther "
             "(not scored)", len(snv), summary["scored_in_peak_windows"],
             summary["scored_recentred"], max_distance, summary["outside_peaks"])
    if len(split_columns(regions)) == 1:
        split = regions["split_0"].to_numpy()[kept["region_row"].to_numpy(np.int64)]
        summary["scored_in_training_regions"] = int((split == "train").sum())
    return kept, summary


def _window_codes(genome, windows: pd.DataFrame):
    from peak2motif.extract import iter_codes

    for _, codes in iter_codes(genome, windows["chrom"].to_numpy(),
                               windows["start"].to_numpy(), windows["end"].to_numpy()):
        yield from codes


# --- writing -----------------------------------------------------------------------------


def top_rows(table: pd.DataFrame, n: int) -> np.ndarray:
    """Rows of the ``n`` strongest variants: smallest p-value, then largest |lfc|."""
    if table.empty:
        return np.zeros(0, np.int64)
    order = np.lexsort((-table["lfc"].abs().to_numpy(), table["pvalue"].to_numpy()))
    return order[:n]


def plot_top_variants(table: pd.DataFrame, logos: np.ndarray, rows: np.ndarray, out_png,
                      flank: int) -> None:
    """Ref and alt contribution logos (``2 * flank + 1`` bp) of the given table rows."""
    import logomaker

    from peak2motif.presentation import pyplot

    plt = pyplot()
    n = max(1, len(rows))
    fig, axes = plt.subplots(2 * n, 1, figsize=(10, 1.6 * 2 * n), squeeze=False)
    if not len(rows):
        axes[0, 0].text(0.5, 0.5, "no variant was scored", ha="center")
        for ax in axes[:, 0]:
            ax.axis("off")
    positions = np.arange(-flank, flank + 1)
    for k, i in enumerate(rows):
        r = table.iloc[i]
        lim = float(np.abs(logos[i]).sum(-1).max()) or 1.0
        for a, allele in enumerate(("ref", "alt")):
            ax = axes[2 * k + a, 0]
            df = pd.DataFrame(logos[i, a], columns=list(BASES), index=positions)
            logo = logomaker.Logo(df, ax=ax, color_scheme="classic")
            logo.highlight_position(0, color="gold", alpha=0.4)
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_ylim(-lim * 1.1, lim * 1.1)
            ax.set_ylabel(f"{allele} {r[allele]}", fontsize=8)
            if a == 0:
                hit = f", motif {r['motif_hit']}" if r["motif_hit"] else ""
                ax.set_title(f"{r['chrom']}:{r['pos']} {r['ref']}>{r['alt']} ({r['id']}), "
                             f"task {r['task']}: lfc {r['lfc']:.2f}, p {r['pvalue']:.2g}"
                             f"{hit}", fontsize=9)
    axes[-1, 0].set_xlabel("bp from the variant (highlighted)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110, format="png")
    plt.close(fig)


def variants_html(table: pd.DataFrame, summary: pd.DataFrame, png, top: int,
                  dataset: str) -> str:
    """The report page: what was done, the summary, the top variants and the logos."""
    from peak2motif.presentation import data_uri, render
    from peak2motif.presentation import table as html_table

    return render("variants.html", title=f"{dataset}: variants", dataset=dataset,
                  summary=html_table(summary), n_rows=len(table),
                  best=html_table(table.iloc[top_rows(table, 50)], keys=True), top=top,
                  figure=data_uri(png))


def write_outputs(scores: VariantScores, table_tsv, summary_tsv, figure_png, html, *,
                  top: int = 5, flank: int = 15, dataset: str = "dataset") -> None:
    """Write the four outputs; none is renamed into place unless all were written."""
    summary = pd.DataFrame([(k, "" if v is None else v) for k, v in scores.summary.items()],
                           columns=["metric", "value"])
    rows = top_rows(scores.table, top)
    with contextlib.ExitStack() as stack:
        tmp_tsv = stack.enter_context(atomic_output(table_tsv))
        tmp_sum = stack.enter_context(atomic_output(summary_tsv))
        tmp_png = stack.enter_context(atomic_output(figure_png))
        tmp_html = stack.enter_context(atomic_output(html))
        scores.table.to_csv(tmp_tsv, sep="\t", index=False, float_format="%.6g", na_rep="NA")
        summary.to_csv(tmp_sum, sep="\t", index=False)
        plot_top_variants(scores.table, scores.logos, rows, tmp_png, flank)
        tmp_html.write_text(variants_html(scores.table, summary, tmp_png, len(rows), dataset))


def run_variant_stage(vcf, genome, regions_tsv, models, *, table_tsv, summary_tsv,
                      figure_png, html, settings=None, attribution=None, site_score=0.7,
                      motifs_tsv=None, patterns_tsv=None, modisco=None, task_type=None,
                      threads: int = 1, dataset: str = "dataset") -> pd.DataFrame:
    """Rule ``score_variants``: :func:`score_variants`, then :func:`write_outputs`."""
    s = _settings(settings)
    scores = score_variants(vcf, genome, regions_tsv, models, settings=s,
                            attribution=attribution, site_score=site_score,
                            motifs_tsv=motifs_tsv, patterns_tsv=patterns_tsv, modisco=modisco,
                            task_type=task_type, threads=threads)
    write_outputs(scores, table_tsv, summary_tsv, figure_png, html, top=int(s["top"]),
                  flank=int(s["logo_flank"]), dataset=dataset)
    return scores.table
