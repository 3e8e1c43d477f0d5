# Variant stage (datasets with `variants:` set): each SNV of the VCF in or near a peak window,
# scored by the fold model whose test split holds its region. Input functions live in
# common.smk (variant_inputs: the VCF, the genome, every fold's model, each task's modisco.h5).
# check_variants reads the VCF first: train_model needs its output (training_inputs), so a
# VCF of the wrong build stops the run before any long work.


rule check_variants:
    """Every record's CHROM, POS and REF against the genome, before any training: a VCF of
    another build or chromosome naming stops the run here, naming the file and line, the
    REF and the genome's base. Writes the VCF's counts (records, SNVs, skipped)."""
    input:
        vcf=variant_vcf,
        genome=genome_file,
    output:
        "results/{dataset}/variants/vcf_check.tsv",
    log:
        "logs/{dataset}/check_variants.log",
    benchmark:
        "benchmarks/{dataset}/check_variants.tsv"
    priority: 50
    conda:
        "../envs/variants.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/check_variants.py"


rule score_variants:
    """Ref and alt predictions (both strands), log-fold change, change of the DeepLIFT
    contributions (same references as the attribution stage), the reported motif hit, and an
    empirical p-value against matched random substitutions in the same windows (BH q-values);
    a table, a summary, ref/alt logos of the top variants and an HTML page."""
    input:
        unpack(variant_inputs),
        regions="results/{dataset}/sequences/regions.tsv",
        motifs="results/{dataset}/motifs/motifs.tsv",
        patterns="results/{dataset}/motifs/patterns.tsv",
    output:
        table=report(
            "results/{dataset}/variants/variants.tsv",
            caption="report/variants_tsv.rst",
            category="8. Variants",
            subcategory="{dataset}",
            labels={"result": "variants.tsv (download)"},
        ),
        summary="results/{dataset}/variants/summary.tsv",
        figure=report(
            "results/{dataset}/variants/top_variants.png",
            caption="report/variants.rst",
            category="8. Variants",
            subcategory="{dataset}",
            labels={"result": "top variants"},
        ),
        html=report(
            "results/{dataset}/variants/variants.html",
            caption="report/variants.rst",
            category="8. Variants",
            subcategory="{dataset}",
            labels={"result": "variant effects (page)"},
        ),
    log:
        "logs/{dataset}/score_variants.log",
    benchmark:
        "benchmarks/{dataset}/score_variants.tsv"
    conda:
        "../envs/variants.yaml"
    threads: setting("attribution", "threads")
    resources:
        mem_mb=setting_or(8000, "attribution", "mem_mb"),
        runtime=setting_or(120, "attribution", "runtime"),
        gpu=1,
    params:
        cfg=section("variants"),
        attribution=section("attribution"),
        site_score=setting("motifs", "site_score"),
        tasks=dataset_tasks,
        task_type=task_type,
    script:
        "../scripts/score_variants.py"
