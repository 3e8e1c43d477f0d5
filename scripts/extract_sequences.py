"""Adapter of rule extract_sequences: the split files of one fold."""

from peak2motif.extract import extract_sequences
from peak2motif.utils import run_rule

with run_rule(snakemake) as sm:  # noqa: F821
    extract_sequences(
        sm.input.genome,
        sm.input.regions,
        {int(sm.wildcards.fold): {s: sm.output[s] for s in ("train", "valid", "test")}},
        sm.params.task_type,
        chunk_size=sm.params.data["chunk_size"],
        seed=sm.params.data["seed"],
    )
