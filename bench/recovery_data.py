"""Datasets of the realistic recovery suite (see bench/recovery.py), built offline.

Every case is real genome sequence that ships in a Debian package, with sites *sampled* from
JASPAR frequency matrices (one draw per position, not the consensus), 1-3 per peak, on a
random strand, near the summit; or real sites (E. coli CRP from RegulonDB); or nothing at
all (the negative controls). Each case is a folder with ``genome.fa``, one narrowPeak file
per task, ``truth.tsv`` (chrom, start, end, strand, motif_id, motif_name, family, task;
0-based half-open) and ``case.yaml`` (what the runner needs: peak files, the JASPAR taxon or
MEME file, the planted motifs and their families).

Backgrounds
-----------
- ``worm``: C. elegans ce2 chrX (17.7 Mb, Debian ``r-bioc-bsgenome``), cut into six
  pseudo-chromosomes of about 3 Mb, as many as C. elegans has, so that chromosome splits
  and folds behave as on a real assembly.
- ``ecoli``: E. coli K-12 MG1655 (4.6 Mb, Debian ``ragout-examples``), one chromosome as
  it is.

Nothing here is tuned to the workflow: sites, spacing and peak shapes follow fixed rules
written before any run, and the seed is the case's index.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

DEBS = {
    "worm": ("r-bioc-bsgenome", "usr/lib/R/site-library/BSgenome/extdata/ce2chrX.fa.gz"),
    "ecoli": ("ragout-examples",
              "usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz"),
}
WORM_PIECES = 6
# Four nematode factors of four TF families (JASPAR2024 CORE nematodes): Fork head (FOX),
# C4-GATA-related, CEBP-related (bZIP) and MyoD/ASC-related (bHLH).
WORM_FACTORS = ["MA0546.1", "MA0542.1", "MA1444.2", "MA0545.2"]
# A crowded peak set (issue 24): nine vertebrate factors of nine TF classes on the worm
# background, four of them low-information (information content of the JASPAR matrix in
# brackets): CEBPB bZIP (16.1 bits), EGR1 C2H2 (11.5), USF1 bHLH (12.8), GABPA ETS (11.7),
# MEF2C MADS (13.4, AT-rich), FOXA1 forkhead (11.0), TBP TATA (9.0), SOX9 HMG (8.9) and
# NKX2-5 homeobox (10.2). Chosen from the classes a real ATAC or ChIP peak set holds, not
# from any run; the hidden case of the issue used other members of most of these classes.
CROWDED_FACTORS = ["MA0466.4", "MA0162.5", "MA0093.4", "MA0062.4", "MA0497.2", "MA0148.5",
                   "MA0108.3", "MA0077.2", "MA0063.3"]
JASPAR = "JASPAR2024"


@dataclass
class Case:
    """One dataset of the suite."""

    name: str
    background: str
    n_peaks: int
    factors: list[str] = field(default_factory=list)
    tasks: int = 1
    kind: str = "planted"  # planted, control or crp
    seed: int = 0
    tax_group: str = "nematodes"  # the JASPAR taxon a user would name for these factors


CASES = [
    Case("worm_planted_500", "worm", 500, WORM_FACTORS, seed=1),
    Case("worm_planted_3000", "worm", 3000, WORM_FACTORS, seed=2),
    Case("worm_planted_20000", "worm", 20000, WORM_FACTORS, seed=3),
    Case("worm_multitask_3000", "worm", 3000, WORM_FACTORS[:3], tasks=3, seed=4),
    Case("worm_control_500", "worm", 500, kind="control", seed=5),
    Case("worm_control_3000", "worm", 3000, kind="control", seed=6),
    Case("worm_control_20000", "worm", 20000, kind="control", seed=7),
    Case("ecoli_crp", "ecoli", 0, kind="crp", seed=8),
    # The small cases CI runs at default settings (tests/test_realistic.py).
    Case("worm_ci_1200", "worm", 1200, WORM_FACTORS, seed=11),
    Case("worm_ci_control_1000", "worm", 1000, kind="control", seed=12),
    # Crowded: nine factors at once (bench/recovery.py reports where each missing one is lost).
    Case("worm_crowded_5000", "worm", 5000, CROWDED_FACTORS, seed=13, tax_group="vertebrates"),
    Case("worm_crowded_20000", "worm", 20000, CROWDED_FACTORS, seed=14,
         tax_group="vertebrates"),
]
BY_NAME = {c.name: c for c in CASES}


# ------------------------------------------------------------------------------ genomes


def fetch_background(kind: str, cache: Path) -> dict[str, np.ndarray]:
    """Chromosome -> upper-case ASCII bytes (uint8) of a shipped genome, downloaded with
    ``apt-get download`` into ``cache`` on first use."""
    package, member = DEBS[kind]
    target = cache / Path(member).name
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True,
                           capture_output=True)
            deb = next(Path(tmp).glob(f"{package}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), "x"], cwd=tmp, check=True)
            shutil.copy(Path(tmp, "x", member), target)
    chroms: dict[str, list[bytes]] = {}
    name = None
    with gzip.open(target, "rb") as fh:
        for line in fh:
            if line.startswith(b">"):
                name = line[1:].split()[0].decode()
                chroms[name] = []
            else:
                chroms[name].append(line.strip())
    out = {c: np.frombuffer(b"".join(parts), np.uint8) & 0xDF for c, parts in chroms.items()}
    if kind == "worm":
        (seq,) = out.values()
        edges = np.linspace(0, len(seq), WORM_PIECES + 1).astype(int)
        pieces = zip(edges[:-1], edges[1:], strict=True)
        out = {f"X{i + 1}": seq[a:b].copy() for i, (a, b) in enumerate(pieces)}
    else:
        out = {"chr": next(iter(out.values())).copy()}
    return out


def write_fasta(path: Path, chroms: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        for c, seq in chroms.items():
            raw = seq.tobytes()
            fh.write(f">{c}\n".encode())
            fh.write(b"\n".join(raw[i:i + 60] for i in range(0, len(raw), 60)) + b"\n")


# ------------------------------------------------------------------------------ motifs


def jaspar_motifs(ids: list[str]) -> list[dict]:
    """Probability matrix ``(W, 4)``, name and family of JASPAR matrices."""
    from pyjaspar import jaspardb

    db = jaspardb(release=JASPAR)
    out = []
    for mid in ids:
        m = db.fetch_motif_by_id(mid)
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=float).T
        pfm = (counts + 0.01) / (counts + 0.01).sum(1, keepdims=True)
        out.append({"id": m.matrix_id, "name": m.name, "pfm": pfm,
                    "family": "; ".join(m.tf_family) or "; ".join(m.tf_class),
                    "class": "; ".join(m.tf_class)})
    return out


def sample_site(pfm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One site drawn from the matrix, one draw per position: ``(W,)`` uint8 ASCII."""
    cdf = np.cumsum(pfm, 1)[:, :3]
    codes = (rng.random(len(pfm))[:, None] > cdf).sum(1)
    return np.frombuffer(b"ACGT", np.uint8)[codes]


def revcomp(seq: np.ndarray) -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    for a, b in (b"AT", b"TA", b"CG", b"GC"):
        lut[a] = b
    return lut[seq][::-1]


# ------------------------------------------------------------------------------ peaks


def place_summits(chroms: dict[str, np.ndarray], n: int, rng: np.random.Generator,
                  spacing: int, edge: int = 1000) -> list[tuple[str, int]]:
    """``n`` random summits at least ``spacing`` apart, ``edge`` from chromosome ends."""
    names = list(chroms)
    sizes = np.array([len(chroms[c]) - 2 * edge for c in names], dtype=float)
    out: list[tuple[str, int]] = []
    taken = {c: np.zeros(0, dtype=np.int64) for c in names}
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n:
            raise RuntimeError(f"cannot place {n} summits {spacing} bp apart")
        c = names[rng.choice(len(names), p=sizes / sizes.sum())]
        s = int(rng.integers(edge, len(chroms[c]) - edge))
        t = taken[c]
        i = np.searchsorted(t, s)
        if (i > 0 and s - t[i - 1] < spacing) or (i < len(t) and t[i] - s < spacing):
            continue
        taken[c] = np.insert(t, i, s)
        out.append((c, s))
    return out


def narrowpeak_row(chrom: str, summit: int, name: str, signal: float,
                   rng: np.random.Generator) -> tuple:
    left, right = int(rng.integers(80, 300)), int(rng.integers(80, 300))
    p = round(2 + 3 * signal, 3)
    return (chrom, summit - left, summit + right, name, min(1000, int(50 * signal)), ".",
            round(signal, 3), p, round(0.8 * p, 3), left)


def plant(chroms, summits, motifs, rng, n_sites=(1, 3), within=50):
    """Write 1-3 sampled sites of ``motifs`` near each summit (in place); truth rows."""
    rows = []
    for i, (c, s) in enumerate(summits):
        k = int(rng.integers(n_sites[0], n_sites[1] + 1))
        taken: list[tuple[int, int]] = []
        for _ in range(k):
            m = motifs[int(rng.integers(len(motifs)))]
            w = len(m["pfm"])
            for _try in range(50):
                start = s + int(rng.integers(-within, within + 1)) - w // 2
                if all(start + w <= a or b <= start for a, b in taken):
                    break
            else:
                continue
            site = sample_site(m["pfm"], rng)
            strand = "+" if rng.random() < 0.5 else "-"
            chroms[c][start:start + w] = site if strand == "+" else revcomp(site)
            taken.append((start, start + w))
            rows.append((c, start, start + w, strand, m["id"], m["name"], m["family"], i))
    return rows


# ------------------------------------------------------------------------------ cases


def build_planted(case: Case, chroms, rng) -> tuple[dict, list]:
    motifs = jaspar_motifs(case.factors) if case.factors else []
    genome_bp = sum(len(s) for s in chroms.values())
    spacing = int(min(1000, 0.6 * genome_bp / max(case.n_peaks, 1)))
    summits = place_summits(chroms, case.n_peaks, rng, spacing)
    if case.tasks == 1:
        truth = plant(chroms, summits, motifs, rng) if motifs else []
        counts = np.bincount([r[-1] for r in truth], minlength=len(summits))
        peaks = {"peaks": [narrowpeak_row(c, s, f"peak{i + 1}",
                                          float(np.exp(rng.normal(1.5, 0.35)) *
                                                (1 + counts[i])), rng)
                           for i, (c, s) in enumerate(summits)]}
        truth = [r[:-1] + ("peaks",) for r in truth]
        return peaks, truth
    # Multi-task: each locus belongs to 1 (60 %), 2 (30 %) or 3 (10 %) of the tasks; a task's
    # peaks carry 1-2 sites of its own factor.
    names = [f"task_{chr(97 + t)}" for t in range(case.tasks)]
    peaks = {n: [] for n in names}
    truth = []
    for i, (c, s) in enumerate(summits):
        k = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])
        members = sorted(rng.choice(case.tasks, size=min(k, case.tasks), replace=False))
        rows = []
        for t in members:
            rows += [r[:-1] + (names[t],) for r in
                     plant(chroms, [(c, s)], [motifs[t]], rng, n_sites=(1, 2))]
        truth += rows
        for t in members:
            n_own = sum(r[-1] == names[t] for r in rows)
            peaks[names[t]].append(narrowpeak_row(
                c, s, f"locus{i + 1}", float(np.exp(rng.normal(1.5, 0.35)) * (1 + n_own)), rng))
    return peaks, truth


def crp_sites() -> list[str]:
    from importlib.resources import files

    path = files("logomaker") / "examples" / "datafiles" / "crp_sites.fa"
    seqs = [line.strip().upper() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith(("#", ">"))]
    return seqs


def build_crp(chroms, rng) -> tuple[dict, list, str]:
    """Peaks on the RegulonDB CRP sites that map exactly onto MG1655 (either strand).

    The summit is the site centre plus a jitter of sd 15 bp (ChIP summits are not exact).
    Returns the peaks, the truth rows and a MEME file text with the CRP matrix built from
    all 358 sites (JASPAR CORE has no bacterial CRP).
    """
    seq = chroms["chr"].tobytes().decode()
    sites = crp_sites()
    truth, found = [], set()
    for site in sites:
        rc = revcomp(np.frombuffer(site.encode(), np.uint8)).tobytes().decode()
        for strand, probe in (("+", site), ("-", rc)):
            at = seq.find(probe)
            if at >= 0 and at not in found:
                found.add(at)
                truth.append(("chr", at, at + len(site), strand, "CRP", "CRP", "CRP", "peaks"))
                break
    truth.sort(key=lambda r: r[1])
    peaks = []
    for i, (c, a, b, *_rest) in enumerate(truth):
        summit = (a + b) // 2 + int(round(rng.normal(0, 15)))
        peaks.append(narrowpeak_row(c, summit, f"crp{i + 1}", float(rng.uniform(3, 12)), rng))
    counts = np.zeros((len(sites[0]), 4))
    for s in sites:
        for j, b in enumerate(s):
            if b in "ACGT":
                counts[j, "ACGT".index(b)] += 1
    ppm = (counts + 0.5) / (counts + 0.5).sum(1, keepdims=True)
    meme = ("MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"
            "Background letter frequencies\nA 0.25 C 0.25 G 0.25 T 0.25\n\n"
            f"MOTIF CRP CRP\nletter-probability matrix: alength= 4 w= {len(ppm)} "
            f"nsites= {len(sites)} E= 0\n"
            + "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in ppm))
    return {"peaks": peaks}, truth, meme


def build_case(case: Case, root: Path, cache: Path) -> Path:
    """Write one case's folder under ``root``; return it. Skips a finished case."""
    out = root / case.name
    if (out / "case.yaml").exists():
        return out
    tmp = root / f".{case.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(case.seed)
    chroms = fetch_background(case.background, cache)
    meta: dict = {"name": case.name, "background": case.background, "kind": case.kind,
                  "n_peaks": case.n_peaks, "tasks": {}, "motifs": {}}
    if case.kind == "crp":
        peaks, truth, meme = build_crp(chroms, rng)
        (tmp / "crp.meme").write_text(meme)
        meta["meme_file"] = "crp.meme"
        meta["motifs"] = {"CRP": {"name": "CRP", "family": "CRP"}}
    else:
        peaks, truth = build_planted(case, chroms, rng)
        for m in jaspar_motifs(case.factors):
            meta["motifs"][m["id"]] = {"name": m["name"], "family": m["family"],
                                       "class": m["class"]}
        if case.background == "worm":
            meta["jaspar_tax_group"] = [case.tax_group]
    write_fasta(tmp / "genome.fa", chroms)
    for task, rows in peaks.items():
        rows = sorted(rows, key=lambda r: (r[0], r[1]))
        pd.DataFrame(rows).to_csv(tmp / f"{task}.narrowPeak", sep="\t", header=False,
                                  index=False)
        meta["tasks"][task] = f"{task}.narrowPeak"
    pd.DataFrame(truth, columns=["chrom", "start", "end", "strand", "motif_id", "motif_name",
                                 "family", "task"]).to_csv(tmp / "truth.tsv", sep="\t",
                                                           index=False)
    meta["n_peaks"] = int(sum(len(r) for r in peaks.values()))
    meta["n_sites"] = len(truth)
    (tmp / "case.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
