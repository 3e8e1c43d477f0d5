# Data stage: simulate_demo (the embedded demo), prepare_regions (windows, negatives, labels,
# folds) and extract_sequences (uint8 codes of one fold's splits, streamed in chunks).


rule simulate_demo:
    """Make a synthetic genome with JASPAR motifs planted near peak summits (the demo)."""
    output:
        genome="resources/{sim}/genome.fa",
        fai="resources/{sim}/genome.fa.fai",
        peaks="resources/{sim}/peaks.narrowPeak",
        planted="resources/{sim}/planted.tsv",
        variants="resources/{sim}/variants.vcf",
    log:
        "logs/{sim}/simulate_demo.log",
    benchmark:
        "benchmarks/{sim}/simulate_demo.tsv"
    conda:
        "../envs/sequences.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cfg=simulation_config,
    script:
        "../scripts/simulate_demo.py"


rule prepare_regions:
    """Centre windows on summits, filter them, add negatives, label, and give every region
    its split in each fold (whole chromosomes, or blocks on genomes with few chromosomes).
    """
    input:
        unpack(region_inputs),
    output:
        regions="results/{dataset}/sequences/regions.tsv",
        summary="results/{dataset}/sequences/summary.tsv",
        html=report(
            "results/{dataset}/sequences/summary.html",
            caption="report/data_summary.rst",
            category="1. Data",
            subcategory="{dataset}",
            labels={"result": "data summary (page)"},
        ),
        gc=report(
            "results/{dataset}/sequences/gc.png",
            caption="report/data_gc.rst",
            category="1. Data",
            subcategory="{dataset}",
            labels={"result": "GC of positives and negatives"},
        ),
    log:
        "logs/{dataset}/prepare_regions.log",
    benchmark:
        "benchmarks/{dataset}/prepare_regions.tsv"
    conda:
        "../envs/sequences.yaml"
    threads: 1
    resources:
        mem_mb=measured("prepare_regions", "mem_mb"),
        runtime=measured("prepare_regions", "runtime"),
    params:
        tasks=peak_tasks,
        dataset=dataset_entry,
        data=section("data"),
    script:
        "../scripts/prepare_regions.py"


rule extract_sequences:
    """Read the windows from the genome and write one fold's train/valid/test split files."""
    input:
        regions="results/{dataset}/sequences/regions.tsv",
        genome=genome_file,
    output:
        train="results/{dataset}/folds/{fold}/sequences/train.h5",
        valid="results/{dataset}/folds/{fold}/sequences/valid.h5",
        test="results/{dataset}/folds/{fold}/sequences/test.h5",
    log:
        "logs/{dataset}/extract_sequences/{fold}.log",
    benchmark:
        "benchmarks/{dataset}/extract_sequences/{fold}.tsv"
    conda:
        "../envs/sequences.yaml"
    threads: 1
    resources:
        mem_mb=measured("extract_sequences", "mem_mb"),
        runtime=measured("extract_sequences", "runtime"),
    params:
        task_type=task_type,
        data=section("data"),
    script:
        "../scripts/extract_sequences.py"
