"""Adapter of rule prepare_regions: windows, negatives, labels and the folds."""

from peak2motif.regions import prepare_regions
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    prepare_regions(
        sm.input.genome,
        dict(zip(sm.params.tasks, sm.input.peaks, strict=True)),
        sm.output.regions,
        sm.output.summary,
        sm.output.html,
        sm.output.gc,
        dataset=sm.wildcards.dataset,
        dataset_config=dict(sm.params.dataset, blacklist=sm.input.get("blacklist")),
        data_config=sm.params.data,
    )
