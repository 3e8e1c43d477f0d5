# Signal stage: BAM or fragments files -> per-base count bigWigs (reused by later runs), and
# the reads-in-peaks check that runs before anything trains on them. A bigWig given as
# `signal` is read as it is. Conventions: scripts/peak2motif/signal/__init__.py.


rule make_signal_track:
    """Count the 5' ends of ChIP-seq reads per base and strand (BPNet), ENCODE's filters."""
    input:
        unpack(signal_conversion_inputs),
    output:
        plus="results/{dataset}/signal/{track}.plus.bw",
        minus="results/{dataset}/signal/{track}.minus.bw",
    log:
        "logs/{dataset}/make_signal_track/{track}.log",
    benchmark:
        "benchmarks/{dataset}/make_signal_track/{track}.tsv"
    conda:
        "../envs/signal.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=signal_runtime,
    params:
        assay="chip",
        settings=signal_reader_settings(),
    script:
        "../scripts/make_signal_track.py"


rule make_cut_site_track:
    """Count ATAC-seq (Tn5, +4/-4) or DNase-seq (0/+1) cut sites per base, both strands in
    one track (ChromBPNet); fragments files are already shifted."""
    input:
        unpack(signal_conversion_inputs),
    output:
        "results/{dataset}/signal/{track}.bw",
    log:
        "logs/{dataset}/make_cut_site_track/{track}.log",
    benchmark:
        "benchmarks/{dataset}/make_cut_site_track/{track}.tsv"
    conda:
        "../envs/signal.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=signal_runtime,
    params:
        assay=signal_assay,
        settings=signal_reader_settings(),
    script:
        "../scripts/make_signal_track.py"


rule check_signal:
    """Stop early when most peaks of a task hold no read of its signal."""
    input:
        tracks=signal_track_files,
        peaks=task_peak_file,
    output:
        "results/{dataset}/signal/{track}.check.tsv",
    log:
        "logs/{dataset}/check_signal/{track}.log",
    conda:
        "../envs/signal.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        min_fraction=config["signal"]["min_peaks_with_reads"],
    script:
        "../scripts/check_signal.py"
