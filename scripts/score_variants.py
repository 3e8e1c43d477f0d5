"""Adapter of rule score_variants: VCF + every fold's model -> variant table, summary, figure,
HTML."""

from peak2motif.utils import run_rule
from peak2motif.variants import run_variant_stage


def as_list(files):
    return [files] if isinstance(files, str) else list(files)


with run_rule(snakemake) as sm:  # noqa: F821
    run_variant_stage(
        sm.input.vcf,
        sm.input.genome,
        sm.input.regions,
        as_list(sm.input.models),
        table_tsv=sm.output.table,
        summary_tsv=sm.output.summary,
        figure_png=sm.output.figure,
        html=sm.output.html,
        settings=sm.params.cfg,
        attribution=sm.params.attribution,
        site_score=sm.params.site_score,
        motifs_tsv=sm.input.motifs,
        patterns_tsv=sm.input.patterns,
        modisco=dict(zip(sm.params.tasks, as_list(sm.input.modisco), strict=True)),
        task_type=sm.params.task_type,
        threads=sm.threads,
        dataset=sm.wildcards.dataset,
    )
