# Attribution stage: DeepLIFT contributions with checks that fail loudly, and a bigWig track.


rule compute_contributions:
    """DeepLIFT contributions of the selected sequences (default: test-set positives ranked by
    prediction), with summation-to-delta, Keras-logit and shap checks; fails when one fails.
    """
    input:
        unpack(planted_truth),
        model="results/{dataset}/model/model.h5",
        train="results/{dataset}/sequences/train.h5",
        valid="results/{dataset}/sequences/valid.h5",
        test="results/{dataset}/sequences/test.h5",
        regions="results/{dataset}/sequences/regions.tsv",
    output:
        contributions="results/{dataset}/contributions/contributions.h5",
        checks="results/{dataset}/contributions/checks.tsv",
        checks_html=report(
            "results/{dataset}/contributions/checks.html",
            caption="report/contribution_checks.rst",
            category="6. Checks",
        ),
        figure=report(
            "results/{dataset}/contributions/top_sequences.png",
            caption="report/contribution_logos.rst",
            category="4. Contributions",
        ),
    log:
        "logs/{dataset}/compute_contributions.log",
    benchmark:
        "benchmarks/{dataset}/compute_contributions.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    params:
        cfg=lookup(dpath="attribution", within=config),
    script:
        "../scripts/compute_contributions.py"


rule write_contribution_track:
    """Per-base contributions of the attributed regions as a bigWig in genome coordinates."""
    input:
        contributions="results/{dataset}/contributions/contributions.h5",
        regions="results/{dataset}/sequences/regions.tsv",
        genome=genome_file,
    output:
        bigwig="results/{dataset}/contributions/contributions.bw",
    log:
        "logs/{dataset}/write_contribution_track.log",
    benchmark:
        "benchmarks/{dataset}/write_contribution_track.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        overlap=lookup(dpath="attribution/track_overlap", within=config),
    script:
        "../scripts/write_contribution_track.py"
