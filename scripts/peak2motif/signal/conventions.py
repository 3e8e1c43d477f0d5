"""Assays, their tracks and shifts, and what kind of file a signal path is."""

from __future__ import annotations

from pathlib import Path

ASSAYS = ("chip", "atac", "dnase")

# (plus-strand shift, minus-strand shift) when a config gives none; the schema repeats them.
DEFAULT_SHIFTS = {"chip": (0, 0), "atac": (4, -4), "dnase": (0, 1)}

BAM_SUFFIXES = (".bam",)
BIGWIG_SUFFIXES = (".bw", ".bigwig", ".bigWig")
FRAGMENT_SUFFIXES = (".tsv", ".tsv.gz", ".tsv.bgz", ".bed", ".bed.gz")


def track_names(assay: str) -> list[str]:
    """The tracks of an assay, in the order of the last axis of the window arrays."""
    return ["plus", "minus"] if assay == "chip" else ["total"]


def cut_shifts(assay: str, settings: dict | None = None) -> tuple[int, int]:
    """(plus, minus) shift added to a read's 5' base for ``assay`` (``signal: shift:``)."""
    shift = ((settings or {}).get("shift") or {}).get(assay)
    if shift is None:
        return DEFAULT_SHIFTS[assay]
    return int(shift["plus"]), int(shift["minus"])


def source_kind(source) -> str:
    """``bam``, ``fragments``, ``bigwig`` or ``bigwig_pair`` (a mapping {plus, minus});
    ``unknown`` for anything else."""
    if isinstance(source, dict):
        return "bigwig_pair"
    name = Path(str(source)).name
    if name.endswith(BAM_SUFFIXES):
        return "bam"
    if name.endswith(BIGWIG_SUFFIXES):
        return "bigwig"
    if name.endswith(FRAGMENT_SUFFIXES):
        return "fragments"
    return "unknown"
