"""The embedded demo: a synthetic genome with real JASPAR motifs planted near peak summits.

The background is an order-1 Markov chain whose GC content varies in 50-kb isochores and rises
near peaks (as at real enhancers and promoters), with CpG depletion, N gaps and soft-masked
(lower-case) stretches. That makes GC a confounder a model could learn instead of the motif,
which is what GC-matched negatives are for.

A fraction ``planted_fraction`` of the peaks carries ``motifs_per_peak`` instances sampled
from the motifs' position frequency matrices (so instances vary like real sites), within
``plant_within`` bp of the summit, on a random strand. The signalValue (narrowPeak column 7)
grows with the number of planted instances, so regression has something to learn. With
``motifs=[]`` nothing is planted: a negative control.

Outputs: ``genome.fa`` (+ ``.fai``), ``peaks.narrowPeak`` and ``planted.tsv`` (chrom, start,
end, strand, motif_id, motif_name, peak; 0-based half-open genome coordinates).
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from peak2motif.errors import InputError
from peak2motif.utils import atomic_output

log = logging.getLogger(__name__)

ISOCHORE = 50_000  # bp per GC block
GC_LEVELS = 64  # GC values are quantised so that one transition table serves each level
PEAK_GC_BOOST = 0.06  # extra GC within PEAK_GC_HALFWIDTH of a summit
PEAK_GC_HALFWIDTH = 300
MIN_SUMMIT_SPACING = 1500  # bp between summits, so background exists between peaks
EDGE = 2000  # summits keep this far from chromosome ends and N gaps
PLANTED_COLUMNS = ["chrom", "start", "end", "strand", "motif_id", "motif_name", "peak"]


@dataclass
class Motif:
    """A motif to plant: probabilities ``pfm`` of shape ``(W, 4)`` over A, C, G, T."""

    matrix_id: str
    name: str
    pfm: np.ndarray


def resolve_motifs(
    motifs: list[str], release: str = "JASPAR2024", key: str = "simulate: motifs"
) -> list[Motif]:
    """Look up JASPAR motifs by matrix ID (``MA0035.4``) or TF name (``GATA1``), offline.

    A name resolves to the latest vertebrate CORE matrix, human first (pyjaspar's own order
    puts e.g. the fly CTCF first).
    """
    if not motifs:
        return []
    from pyjaspar import jaspardb

    try:
        db = jaspardb(release=release)
    except Exception as err:  # pyjaspar raises a bare Exception for an unknown release
        raise InputError(
            f"unknown JASPAR release '{release}' ({err})",
            key=key.replace("motifs", "jaspar_release"),
            fix="use a release pyjaspar ships, e.g. JASPAR2024",
        ) from None
    out = []
    for ref in motifs:
        if re.fullmatch(r"MA\d{4}(\.\d+)?", ref):
            m = db.fetch_motif_by_id(ref)
        else:
            hits = [h for h in db.fetch_motifs_by_name(ref) if h.tax_group == "vertebrates"]
            hits.sort(key=lambda h: ("9606" not in (h.species or []), h.matrix_id))
            m = hits[0] if hits else None
        if m is None:
            names = sorted({x.name for x in db.fetch_motifs(tax_group="vertebrates")})
            close = difflib.get_close_matches(ref.upper(), names, n=3)
            raise InputError(
                f"no vertebrate JASPAR motif '{ref}' in {release}",
                key=key,
                fix="give a matrix ID (e.g. MA0035.4) or a TF name"
                + (f"; close names: {', '.join(close)}" if close else ""),
            )
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T  # (W, 4)
        pfm = (counts + 0.01) / (counts + 0.01).sum(1, keepdims=True)
        out.append(Motif(m.matrix_id, m.name, pfm))
    return out


def _transition_tables(gc_levels: np.ndarray, cpg_depletion: float) -> np.ndarray:
    """Cumulative order-1 transition tables ``(K, 4, 3)``: row = previous base, col = cdf."""
    k = len(gc_levels)
    probs = np.empty((k, 4, 4))
    probs[:] = np.stack([(1 - gc_levels) / 2, gc_levels / 2, gc_levels / 2, (1 - gc_levels) / 2],
                        axis=1)[:, None, :]
    probs[:, 1, 2] *= cpg_depletion  # C -> G is rare in vertebrate genomes
    probs /= probs.sum(-1, keepdims=True)
    return np.cumsum(probs, -1)[..., :3]


def markov_chain(level: np.ndarray, cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample an order-1 Markov chain with position-dependent transition tables.

    Parameters
    ----------
    level : (n,) int array, the transition table used at each position
    cdf : (K, 4, 3) cumulative transition probabilities
    rng : the random generator

    Returns
    -------
    (n,) uint8 codes 0..3.

    Vectorised without a per-base Python loop: each position's step is a map from the
    previous base to the next (4 entries), and the chain is the running composition of those
    maps, computed as a parallel prefix scan in log2(n) numpy passes.
    """
    n = len(level)
    step = np.empty((n, 4), dtype=np.uint8)
    for lo in range(0, n, 1 << 20):  # bounded temporaries
        hi = min(n, lo + (1 << 20))
        u = rng.random(hi - lo)[:, None, None]
        step[lo:hi] = (u > cdf[level[lo:hi]]).sum(-1)
    d = 1
    while d < n:
        step[d:] = np.take_along_axis(step[d:], step[:-d], axis=1)
        d *= 2
    return step[:, rng.integers(4)]


def _place_summits(
    lengths: dict[str, int], gaps: dict[str, list[tuple[int, int]]], n_peaks: int,
    rng: np.random.Generator,
) -> list[tuple[str, int]]:
    """Random summits at least MIN_SUMMIT_SPACING apart, away from ends and N gaps."""
    chroms = list(lengths)
    total = sum(lengths.values())
    capacity = sum(max(0, n - 2 * EDGE) for n in lengths.values()) // MIN_SUMMIT_SPACING
    if n_peaks > capacity // 2:
        raise InputError(
            f"{n_peaks} peaks do not fit a {total:,} bp genome with {MIN_SUMMIT_SPACING} bp "
            "between summits and room for background negatives",
            key="simulate: n_peaks",
            fix=f"use at most {capacity // 2} peaks or raise chromosome_length / n_chromosomes",
        )
    summits = []
    for c in chroms:
        want = int(round(n_peaks * lengths[c] / total * 3))
        cand = np.sort(rng.integers(EDGE, lengths[c] - EDGE, size=want))
        last = -MIN_SUMMIT_SPACING
        for s in cand:
            if s - last < MIN_SUMMIT_SPACING:
                continue
            if any(g0 - EDGE <= s < g1 + EDGE for g0, g1 in gaps[c]):
                continue
            summits.append((c, int(s)))
            last = s
    if len(summits) < n_peaks:
        raise InputError(
            f"only {len(summits)} of {n_peaks} peaks could be placed",
            key="simulate: n_peaks",
            fix="lower n_peaks or raise chromosome_length",
        )
    keep = np.sort(rng.choice(len(summits), size=n_peaks, replace=False))
    return [summits[i] for i in keep]


def sample_site(
    pfm: np.ndarray, rng: np.random.Generator, min_site_score: float = 0.0, batch: int = 256
) -> np.ndarray:
    """Sample one site ``(W,)`` of base codes from a PFM ``(W, 4)``.

    Sites whose log-odds score (against a uniform background) lies below ``min_site_score``
    of the way from the PFM's worst to its best possible score are rejected and redrawn, so
    ``0`` keeps every sample and ``1`` keeps only the consensus. ChIP-seq summits sit mostly
    on strong sites; plain PFM samples are often so weak that no model can tell them from
    background.
    """
    logodds = _logodds(pfm)
    worst, best = logodds.min(1).sum(), logodds.max(1).sum()
    threshold = worst + min_site_score * (best - worst)
    cdf = np.cumsum(pfm, 1)[:, :3]
    for _ in range(1000):
        sites = (rng.random((batch, len(pfm)))[:, :, None] > cdf).sum(2).astype(np.uint8)
        scores = logodds[np.arange(len(pfm)), sites].sum(1)
        ok = np.flatnonzero(scores >= threshold)
        if len(ok):
            return sites[ok[0]]
    return logodds.argmax(1).astype(np.uint8)


def _logodds(pfm: np.ndarray) -> np.ndarray:
    """Log2-odds ``(W, 4)`` of a PFM against a uniform background (small pseudocount)."""
    return np.log2((pfm + 1e-3) / (1 + 4e-3) / 0.25)


def _relative_scores(x: np.ndarray, logodds: np.ndarray) -> np.ndarray:
    """Best-strand log-odds of every window of ``x`` ``(n,)`` codes, scaled so that the
    PFM's worst possible score is 0 and its best is 1; shape ``(n - W + 1,)``."""
    from numpy.lib.stride_tricks import sliding_window_view

    w = len(logodds)
    worst, best = logodds.min(1).sum(), logodds.max(1).sum()
    win = sliding_window_view(x, w)
    cols = np.arange(w)
    fwd = logodds[cols, win].sum(1)
    rev = logodds[cols, (3 - win)[:, ::-1]].sum(1)
    return (np.maximum(fwd, rev) - worst) / (best - worst)


def scrub_chance_sites(
    x: np.ndarray, keep: list[tuple[int, int]], pfms: list[np.ndarray], threshold: float,
    rng: np.random.Generator, max_rounds: int = 20,
) -> int:
    """Break up chance matches of ``pfms`` scoring >= ``threshold`` in ``x`` (in place).

    Windows overlapping a ``keep`` interval (a planted site, offsets into ``x``) are left
    alone. A chance match is replaced by a dinucleotide shuffle of itself, which keeps its
    base and dinucleotide counts, so scrubbing adds no composition signal (GC, CpG) to peaks.
    Without this the truth table misses chance sites as strong as planted ones, which the
    model rightly scores. Returns the number of windows shuffled.
    """
    from peak2motif.sequences import dinuc_shuffle_codes

    state = np.random.RandomState(int(rng.integers(2**31)))
    changed = 0
    for _ in range(max_rounds):
        found = False
        for pfm in pfms:
            logodds = _logodds(pfm)
            w = len(pfm)
            if len(x) < w:
                continue
            for i in np.flatnonzero(_relative_scores(x, logodds) >= threshold):
                if any(i < b and a < i + w for a, b in keep):
                    continue
                x[i:i + w] = dinuc_shuffle_codes(x[i:i + w], state)
                changed += 1
                found = True
        if not found:
            break
    return changed


def _gaps(lengths: dict[str, int], n_gaps: int, rng) -> dict[str, list[tuple[int, int]]]:
    gaps: dict[str, list[tuple[int, int]]] = {}
    for c, n in lengths.items():
        gaps[c] = []
        for _ in range(n_gaps):
            width = int(rng.integers(500, 3000))
            g0 = int(rng.integers(EDGE, n - EDGE - width))
            gaps[c].append((g0, g0 + width))
    return gaps


def background(lengths: dict[str, int], summits: list[tuple[str, int]], gc_content: float,
               cpg_depletion: float, rng) -> dict[str, np.ndarray]:
    """Markov background codes of each chromosome: 50-kb GC isochores, GC raised near
    summits, CpG depleted, C/G and A/T balanced."""
    levels = np.linspace(0.2, 0.7, GC_LEVELS)
    cdf = _transition_tables(levels, cpg_depletion)
    seqs: dict[str, np.ndarray] = {}
    for c, n in lengths.items():
        n_blocks = -(-n // ISOCHORE)
        block_gc = np.clip(rng.normal(gc_content, 0.03, n_blocks), 0.2, 0.7)
        gc = np.repeat(block_gc, ISOCHORE)[:n]
        for cc, s in summits:
            if cc == c:
                gc[max(0, s - PEAK_GC_HALFWIDTH):s + PEAK_GC_HALFWIDTH] += PEAK_GC_BOOST
        level = np.clip(np.round((gc - 0.2) / 0.5 * (GC_LEVELS - 1)), 0, GC_LEVELS - 1)
        # Depleting C->G alone leaves fewer G than C. Odd isochores are generated reversed
        # and complemented, which balances C/G and A/T while keeping CpG (its own reverse
        # complement) depleted; `flip` is its own inverse.
        flip = np.arange(n)
        odd = (flip // ISOCHORE) % 2 == 1
        block_start = flip // ISOCHORE * ISOCHORE
        block_end = np.minimum(block_start + ISOCHORE, n)
        flip[odd] = block_start[odd] + (block_end[odd] - 1 - np.arange(n)[odd])
        x = markov_chain(level[flip].astype(np.intp), cdf, rng)[flip]
        x[odd] = 3 - x[odd]
        seqs[c] = x
    return seqs


def plant_peaks(seqs: dict[str, np.ndarray], summits: list[tuple[str, int]],
                plant: list[Motif], cfg: dict, rng) -> tuple[list[tuple], list[tuple], int]:
    """Plant sampled sites near each summit (in place) and scrub chance sites; return the
    narrowPeak rows, the truth rows and the number of chance sites shuffled."""
    peak_rows, planted_rows = [], []
    scrubbed = 0
    for i, (c, s) in enumerate(summits):
        name = f"peak{i + 1}"
        n_inst = cfg["motifs_per_peak"] if (plant and rng.random() < cfg["planted_fraction"]) \
            else 0
        taken: list[tuple[int, int]] = []
        for _ in range(n_inst):
            m = plant[int(rng.integers(len(plant)))]
            w = len(m.pfm)
            for _try in range(100):
                start = s + int(rng.integers(-cfg["plant_within"], cfg["plant_within"] + 1)) \
                    - w // 2
                if all(start + w <= a or b <= start for a, b in taken):
                    break
            else:
                continue
            taken.append((start, start + w))
            site = sample_site(m.pfm, rng, cfg["min_site_score"])
            strand = "+" if rng.random() < 0.5 else "-"
            if strand == "-":
                site = (3 - site)[::-1]
            seqs[c][start:start + w] = site
            planted_rows.append((c, start, start + w, strand, m.matrix_id, m.name, name))
        if plant and cfg["scrub_within"]:
            lo, hi = max(0, s - cfg["scrub_within"]), min(len(seqs[c]), s + cfg["scrub_within"])
            scrubbed += scrub_chance_sites(
                seqs[c][lo:hi], [(a - lo, b - lo) for a, b in taken],
                [m.pfm for m in plant], cfg["scrub_score"], rng)
        signal = float(np.exp(rng.normal(1.5, 0.35)) * (1 + 1.5 * len(taken)))
        left, right = int(rng.integers(100, 400)), int(rng.integers(100, 400))
        pval = 2 + 3 * signal
        peak_rows.append((c, s - left, s + right, name, min(1000, int(signal * 50)), ".",
                          round(signal, 4), round(pval, 4), round(pval * 0.8, 4), left))
    return peak_rows, planted_rows, scrubbed


def write_genome(path: str | Path, seqs: dict[str, np.ndarray],
                 gaps: dict[str, list[tuple[int, int]]], soft_mask_fraction: float,
                 rng) -> None:
    """The codes as FASTA (60-bp lines) with N gaps and soft-masked stretches, and its .fai."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        for c, x in seqs.items():
            b = np.frombuffer(b"ACGT", dtype=np.uint8)[x].copy()
            n = len(b)
            masked = 0
            while masked < soft_mask_fraction * n:
                w = int(rng.integers(100, 2000))
                m0 = int(rng.integers(0, n - w))
                b[m0:m0 + w] |= 0x20  # lower case
                masked += w
            for g0, g1 in gaps[c]:
                b[g0:g1] = ord("N")
            seq = b.tobytes()
            fh.write(f">{c}\n".encode())
            fh.write(b"\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + b"\n")
    index_fasta(path)


def demo_variants(seqs: dict[str, np.ndarray], planted_rows: list[tuple], plant: list[Motif],
                  summits: list[tuple[str, int]], n: int, rng) -> pd.DataFrame:
    """SNVs to score: half break a planted site (its most certain base, on the site's strand,
    becomes the matrix's least likely base), half are random substitutions in peaks at least
    20 bp from every planted site. The genome keeps the reference allele. Columns: chrom,
    pos (1-based), ref, alt, id (``site_N`` or ``random_N``)."""
    by_id = {m.matrix_id: m for m in plant}
    rows = []
    sites = [planted_rows[i] for i in rng.permutation(len(planted_rows))[: n // 2]]
    for k, (c, start, _end, strand, mid, _name, _peak) in enumerate(sites):
        pfm = by_id[mid].pfm if strand == "+" else by_id[mid].pfm[::-1, ::-1]
        j = int(pfm.max(1).argmax())
        ref = int(seqs[c][start + j])
        alt = int(pfm[j].argmin())
        if alt != ref:
            rows.append((c, start + j + 1, "ACGT"[ref], "ACGT"[alt], f"site_{k + 1}"))
    covered = {c: np.zeros(len(x), bool) for c, x in seqs.items()}
    for c, start, end, *_ in planted_rows:
        covered[c][max(0, start - 20):end + 20] = True
    n_random, k = n - len(rows), 0
    for i in rng.permutation(len(summits)):
        if k >= n_random:
            break
        c, s = summits[i]
        pos = s + int(rng.integers(-80, 81))
        if covered[c][pos]:
            continue
        ref = int(seqs[c][pos])
        alt = int((ref + rng.integers(1, 4)) % 4)
        k += 1
        rows.append((c, pos + 1, "ACGT"[ref], "ACGT"[alt], f"random_{k}"))
    out = pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt", "id"])
    rank = {c: i for i, c in enumerate(seqs)}
    return out.assign(_r=out["chrom"].map(rank)).sort_values(["_r", "pos"]).drop(
        columns="_r").drop_duplicates(["chrom", "pos"]).reset_index(drop=True)


def write_vcf(path: str | Path, snvs: pd.DataFrame, lengths: dict[str, int]) -> None:
    """A minimal VCF 4.2 of ``snvs`` (chrom, pos, ref, alt, id)."""
    header = ["##fileformat=VCFv4.2", *(f"##contig=<ID={c},length={n}>"
                                         for c, n in lengths.items()),
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    body = [f"{r.chrom}\t{r.pos}\t{r.id}\t{r.ref}\t{r.alt}\t.\tPASS\t."
            for r in snvs.itertuples()]
    with atomic_output(path) as tmp:
        Path(tmp).write_text("\n".join(header + body) + "\n")


def simulate_demo(
    genome_path: str | Path,
    peaks_path: str | Path,
    planted_path: str | Path,
    variants_path: str | Path | None = None,
    *,
    motif_list: list[Motif] | None = None,
    **settings,
) -> dict[str, int]:
    """Write a synthetic genome, its peaks and the truth table of planted motifs.

    ``settings`` are the keys of a ``simulate: NAME`` entry of the config; missing ones take
    the schema defaults. ``motif_list`` (already resolved motifs) bypasses the JASPAR look-up
    of ``motifs``; tests use it. Everything random comes from ``seed``. Returns counts for
    the log.
    """
    from peak2motif.config import simulation_defaults

    cfg = simulation_defaults(settings)
    rng = np.random.default_rng(cfg["seed"])
    plant = motif_list if motif_list is not None else resolve_motifs(
        list(cfg["motifs"]), cfg["jaspar_release"])
    lengths = {f"chr{i + 1}": int(cfg["chromosome_length"])
               for i in range(cfg["n_chromosomes"])}
    gaps = _gaps(lengths, cfg["n_gaps"], rng)
    summits = _place_summits(lengths, gaps, cfg["n_peaks"], rng)
    seqs = background(lengths, summits, cfg["gc_content"], cfg["cpg_depletion"], rng)
    peak_rows, planted_rows, scrubbed = plant_peaks(seqs, summits, plant, cfg, rng)
    write_genome(genome_path, seqs, gaps, cfg["soft_mask_fraction"], rng)
    with atomic_output(peaks_path) as tmp:
        pd.DataFrame(peak_rows).to_csv(tmp, sep="\t", header=False, index=False)
    with atomic_output(planted_path) as tmp:
        pd.DataFrame(planted_rows, columns=PLANTED_COLUMNS).to_csv(tmp, sep="\t", index=False)
    if variants_path is not None:
        write_vcf(variants_path, demo_variants(seqs, planted_rows, plant, summits,
                                               cfg["n_variants"], rng), lengths)
    counts = {"chromosomes": len(lengths), "bp": sum(lengths.values()),
              "peaks": len(peak_rows), "planted": len(planted_rows),
              "chance_sites_shuffled": scrubbed}
    log.info("simulated %s", counts)
    return counts


def index_fasta(path: str | Path) -> Path:
    """Write ``path.fai`` (samtools format) next to a FASTA, atomically; return its path."""
    import pyfaidx

    fai = Path(f"{path}.fai")
    with atomic_output(fai) as tmp:
        tmp.unlink()
        pyfaidx.Faidx(str(path), indexname=str(tmp), rebuild=True).close()
    return fai
