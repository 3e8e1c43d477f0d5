# Data stage (owned by the data-stage work): simulate_demo, prepare_regions, extract_sequences.
