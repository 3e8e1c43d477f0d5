"""Adapter of rule record_provenance: resolved config and software versions of one dataset."""

from peak2motif.provenance import record_provenance
from peak2motif.utils import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
record_provenance(
    snakemake.params.config,  # noqa: F821
    snakemake.wildcards.dataset,  # noqa: F821
    config_out=snakemake.output.config,  # noqa: F821
    versions_out=snakemake.output.versions,  # noqa: F821
    html_out=snakemake.output.html,  # noqa: F821
)
