"""Adapter of rule check_variants: the dataset's VCF against its genome, before training."""

from peak2motif.utils import run_rule
from peak2motif.variants import check_vcf

with run_rule(snakemake) as sm:  # noqa: F821
    check_vcf(sm.input.vcf, sm.input.genome, sm.output[0])
