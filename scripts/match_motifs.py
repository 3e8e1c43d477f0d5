"""Adapter of rule match_motifs: modisco.h5 of every task -> motif table, MEME, logos, HTML."""

from peak2motif.motifs import match_motifs
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    params = dict(sm.params.cfg)
    params["meme_file"] = sm.input.get("meme_file")  # an input: a changed file reruns the rule
    match_motifs(
        modisco_h5=dict(zip(sm.params.tasks, sm.input.modisco, strict=True)),
        contributions=sm.input.contributions,
        regions_tsv=sm.input.regions,
        planted_tsv=sm.input.get("planted"),
        motifs_tsv=sm.output.table,
        patterns_tsv=sm.output.patterns,
        motifs_meme=sm.output.meme,
        logos_dir=sm.output.logos,
        html=sm.output.html,
        params=params,
        threads=sm.threads,
        examples_png=sm.output.examples,
    )
