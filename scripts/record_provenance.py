"""Adapter of rule record_provenance: resolved config and software versions of one dataset."""

from peak2motif.provenance import record_provenance
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    record_provenance(
        sm.params.config,
        sm.wildcards.dataset,
        config_out=sm.output.config,
        versions_out=sm.output.versions,
        html_out=sm.output.html,
    )
