# Provenance: what produced results/NAME/, recorded next to it.


rule record_provenance:
    """Write the dataset's resolved config (defaults and its own overrides filled in) and the
    software versions. It runs on the CPU partition: the GPU facts (CUDA build, device) are
    logged by the GPU jobs themselves (train_model, compute_contributions)."""
    output:
        config=report(
            "results/{dataset}/provenance/config.yaml",
            caption="report/provenance_config.rst",
            category="7. Provenance",
            subcategory="{dataset}",
            labels={"result": "config.yaml (download)"},
        ),
        versions=report(
            "results/{dataset}/provenance/versions.tsv",
            caption="report/provenance_versions.rst",
            category="7. Provenance",
            subcategory="{dataset}",
            labels={"result": "versions.tsv (download)"},
        ),
        html=report(
            "results/{dataset}/provenance/provenance.html",
            caption="report/provenance.rst",
            category="7. Provenance",
            subcategory="{dataset}",
            labels={"result": "provenance (page)"},
        ),
    log:
        "logs/{dataset}/record_provenance.log",
    benchmark:
        "benchmarks/{dataset}/record_provenance.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        config=provenance_config,
    script:
        "../scripts/record_provenance.py"
