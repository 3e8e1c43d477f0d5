"""Adapter of rule compute_contributions: DeepLIFT contributions and their checks."""

from peak2motif.attribution import compute_contributions
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
inp, out = snakemake.input, snakemake.output  # noqa: F821
compute_contributions(
    model_h5=inp.model,
    split_paths={"train": inp.train, "valid": inp.valid, "test": inp.test},
    regions_tsv=inp.regions,
    out_h5=out.contributions,
    out_checks=out.checks,
    out_checks_html=out.checks_html,
    out_png=out.figure,
    settings=snakemake.params.cfg,  # noqa: F821
    planted_tsv=inp.get("planted"),
    threads=snakemake.threads,  # noqa: F821
)
