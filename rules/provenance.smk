# Provenance: what produced results/NAME/, recorded next to it.


rule record_provenance:
    """Write the dataset's resolved config (defaults filled in) and the software versions.

    It runs in the TensorFlow environment and asks for a GPU, so on a cluster it records the
    TensorFlow build, CUDA version and GPU model of the partition that trains the model.
    """
    output:
        config="results/{dataset}/provenance/config.yaml",
        versions=report(
            "results/{dataset}/provenance/versions.tsv",
            caption="report/provenance_versions.rst",
            category="7. Provenance",
        ),
        html=report(
            "results/{dataset}/provenance/provenance.html",
            caption="report/provenance.rst",
            category="7. Provenance",
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
        gpu=1,
    params:
        config=provenance_config,
    script:
        "../scripts/record_provenance.py"
