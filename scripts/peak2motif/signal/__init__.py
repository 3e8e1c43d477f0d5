"""Base-resolution signal: per-base count tracks from BAM, fragments or bigWig files.

The data contract (stated once; every reader and writer here keeps it)
-----------------------------------------------------------------------
**Windows.** ``read_windows(tracks, chroms, starts, length)`` returns the counts of ``N``
windows as a float32 array of shape ``(N, L, S)``: ``N`` windows, ``L`` bases from each
window's 0-based start, ``S`` tracks. ``S = 2`` for ChIP-seq (plus strand, minus strand, in
that order, as BPNet counts them) and ``S = 1`` for ATAC-seq and DNase-seq (cut sites of
both strands summed, as ChromBPNet counts them). Bases without data, and bases past a
chromosome end, read as 0; a value is a count (>= 0, finite), never a normalised signal.

**Tracks on disk.** One bigWig per track (``TASK.plus.bw`` and ``TASK.minus.bw``, or
``TASK.bw``), one entry per base that has a count (span 1, value = count), chromosomes named
and sized as in the genome FASTA. A user's own bigWig, or pair ``{plus: a.bw, minus: b.bw}``,
is read as is and must follow the same rule (checked: names, NaN, negative values).

**Where a read is counted** (0-based base positions; ``p5`` is the base of the read's 5'
end: ``reference_start`` for a forward read, ``reference_end - 1`` for a reverse one):

========  ===========================  ====================================================
assay     BAM read                     why
========  ===========================  ====================================================
chip      ``p5`` on its own strand      BPNet: 5' ends per strand, no shift
atac      ``p5 + 4`` (forward),         the centre of Tn5's 9-bp target duplication, the
          ``p5 - 4`` (reverse)          symmetric "+4/-4" of ChromBPNet; one track
dnase     ``p5`` (forward),             DNase I cuts between two bases; both strands name the
          ``p5 + 1`` (reverse)          base just right of the cut, in forward coordinates
                                        (ChromBPNet's "0/+1"); one track
========  ===========================  ====================================================

The shifts are settings (``signal: shift:``). The often-quoted ATAC "+4/-5" is the same
+4/-4 written on BED intervals: ENCODE and 10x move a reverse read's *exclusive end* by -5,
and ChromBPNet (``reads_to_bigwig.py``) counts the base at that end coordinate, which is
``p5 - 4``; counting the last base inside the interval instead (``p5 - 5``) breaks the
strand symmetry of the Tn5 bias motif (ChromBPNet's preprocessing README shows both).

**Fragments files** (10x Genomics / ArchR layout: ``chrom, start, end, barcode, count``,
0-based, end exclusive; gzip/bgzip or plain, sorted by chrom then start) are already
Tn5-adjusted: 10x documents that ``start`` is the left alignment end + 4 and ``end`` the
right alignment end - 5, each "the center point between these cuts". Both ends are cut
sites, at bases ``start`` and ``end`` (ChromBPNet's convention, identical to the BAM rule
above for the same read pair); the count column (PCR duplicates) is ignored, so each
fragment counts twice, once per end. A fragments file is ATAC data: ``assay: atac``.

**Which BAM reads count** (ENCODE's filter, ``samtools view -F 1804 -q 30``, plus ``-f 2``
for paired reads): mapped, primary, not supplementary, not QC-failed, MAPQ >= 30, not
flagged duplicate, and for paired reads a proper pair with its mate mapped. Both mates of a
pair count (each is one fragment end, one Tn5 insertion). ``signal: duplicates: keep`` and
``signal: min_mapq`` change the two that users most often need to change.

Modules: ``bam`` (BAM records -> cut sites), ``fragments`` (fragments -> cut sites),
``bigwig`` (count tracks written chromosome by chromosome; the window reader), ``checks``
(bad input, found before any long job).
"""

from __future__ import annotations

from peak2motif.signal.bigwig import read_windows, write_count_tracks
from peak2motif.signal.conventions import (
    ASSAYS,
    cut_shifts,
    source_kind,
    track_names,
)

__all__ = [
    "ASSAYS",
    "cut_shifts",
    "make_signal_track",
    "read_windows",
    "source_kind",
    "track_names",
    "write_count_tracks",
]


def make_signal_track(source: str, genome: str, assay: str, out_paths: list[str],
                      settings: dict | None = None) -> dict:
    """Convert a BAM or fragments file into per-base count bigWigs (``out_paths``: plus and
    minus for chip, one path for atac/dnase), streaming chromosome by chromosome.

    Returns
    -------
    A summary: reads seen and kept (BAM) or fragments read, counts written per track.
    """
    from peak2motif.config import with_defaults
    from peak2motif.genome import chromosome_lengths
    from peak2motif.signal import checks

    settings = with_defaults("signal", settings)
    sizes = chromosome_lengths(genome)
    kind = source_kind(source)
    checks.check_assay(assay, kind, source)
    if len(out_paths) != len(track_names(assay)):
        raise ValueError(f"assay {assay} writes {len(track_names(assay))} tracks, "
                         f"got {len(out_paths)} paths")
    if kind == "bam":
        from peak2motif.signal import bam

        checks.check_bam(source, sizes, genome)
        stream = bam.cut_sites(source, sizes, cut_shifts(assay, settings),
                               min_mapq=settings["min_mapq"],
                               keep_duplicates=settings["duplicates"] == "keep",
                               proper_pairs=settings["proper_pairs"])
    elif kind == "fragments":
        from peak2motif.signal import fragments

        stream = fragments.cut_sites(source, sizes, genome)
    else:
        raise ValueError(f"{source} is a {kind}: it needs no conversion")
    return write_count_tracks(stream, sizes, out_paths, stranded=len(out_paths) == 2)
