"""Adapter of rule extract_sequences: one HDF5 split file per split."""

from peak2motif.extract import extract_sequences
from peak2motif.utils import setup_logging

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
extract_sequences(
    sm.input.genome,
    sm.input.regions,
    {"train": sm.output.train, "valid": sm.output.valid, "test": sm.output.test},
    sm.params.task_type,
    chunk_size=sm.params.data["chunk_size"],
    seed=sm.params.data["seed"],
)
