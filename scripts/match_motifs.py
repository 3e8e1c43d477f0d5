"""Adapter of rule match_motifs: modisco.h5 -> motif table, MEME file, logos and HTML."""

from peak2motif.motifs import match_motifs
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
inp, out = snakemake.input, snakemake.output  # noqa: F821
params = dict(snakemake.params.cfg)  # noqa: F821
params["meme_file"] = inp.get("meme_file")  # an input, so a changed file reruns the rule
match_motifs(
    modisco_h5=inp.modisco,
    contributions=inp.contributions,
    regions_tsv=inp.regions,
    planted_tsv=inp.get("planted"),
    motifs_tsv=out.table,
    patterns_tsv=out.patterns,
    motifs_meme=out.meme,
    logos_dir=out.logos,
    html=out.html,
    params=params,
    threads=snakemake.threads,  # noqa: F821
)
