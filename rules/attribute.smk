# Attribution stage: contributions of every task for each (fold, shard), with checks that
# fail the job loudly; cross-checks on a sample of each fold in their own job; gathered into
# one contributions.h5, a checks table and a bigWig track.


rule compute_contributions:
    """Contributions of one shard of one fold: the fold's test regions (all splits with one
    fold), positives of every task plus matched negatives, checked on the written arrays.
    """
    input:
        unpack(split_files),
        model="results/{dataset}/folds/{fold}/model/model.keras",
        h5="results/{dataset}/folds/{fold}/model/model.h5",
    output:
        contributions="results/{dataset}/folds/{fold}/contributions/shard_{shard}.h5",
        checks="results/{dataset}/folds/{fold}/contributions/shard_{shard}.tsv",
    log:
        "logs/{dataset}/compute_contributions/{fold}_{shard}.log",
    benchmark:
        "benchmarks/{dataset}/compute_contributions/{fold}_{shard}.tsv"
    # before evaluate_model and summarize_evaluation when cores are short: the motif stage
    # waits for the contributions, nothing waits for the evaluation
    priority: 1
    conda:
        "../envs/tensorflow.yaml"
    threads: setting("attribution", "threads")
    resources:
        mem_mb=measured("compute_contributions", "mem_mb", ("attribution", "mem_mb")),
        runtime=measured("compute_contributions", "runtime", ("attribution", "runtime")),
        gpu=1,
    params:
        cfg=section("attribution"),
        folds=n_folds,
    script:
        "../scripts/compute_contributions.py"


rule crosscheck_contributions:
    """Independent checks of one fold's method on a sample: shap DeepExplainer, a second
    computation of the hypothetical contributions, the deeplift package where it converts
    the model, and in-silico mutagenesis (recorded)."""
    input:
        unpack(split_files),
        model="results/{dataset}/folds/{fold}/model/model.keras",
        h5="results/{dataset}/folds/{fold}/model/model.h5",
    output:
        checks="results/{dataset}/folds/{fold}/contributions/crosscheck.tsv",
    log:
        "logs/{dataset}/crosscheck_contributions/{fold}.log",
    benchmark:
        "benchmarks/{dataset}/crosscheck_contributions/{fold}.tsv"
    priority: 1
    conda:
        "../envs/tensorflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cfg=section("attribution"),
        model=section("model"),
        folds=n_folds,
    script:
        "../scripts/crosscheck_contributions.py"


rule gather_contributions:
    """Gather the shards of every fold into one file ordered by region (every shard checked
    before anything is written); one table of the jobs' checks (the worst value over jobs);
    a figure of the best-predicted sequences.
    """
    input:
        unpack(planted_truth),
        shards=shard_files("h5"),
        checks=shard_files("tsv"),
        crosschecks=fold_files(
            "results/{dataset}/folds/{fold}/contributions/crosscheck.tsv"
        ),
        regions="results/{dataset}/sequences/regions.tsv",
    output:
        contributions="results/{dataset}/contributions/contributions.h5",
        checks="results/{dataset}/contributions/job_checks.tsv",
        figure=report(
            "results/{dataset}/contributions/top_sequences.png",
            caption="report/contribution_logos.rst",
            category="4. Contributions",
            subcategory="{dataset}",
            labels={"result": "best-predicted sequences"},
        ),
    log:
        "logs/{dataset}/gather_contributions.log",
    benchmark:
        "benchmarks/{dataset}/gather_contributions.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        cfg=section("attribution"),
    script:
        "../scripts/gather_contributions.py"


rule verify_contributions:
    """Check the gathered file the way TF-MoDISco reads it: its stored sums on its own
    sequences, its logits and predictions against the model files and the evaluation, and
    a sample's hypothetical contributions recomputed by a second implementation with the
    stage's references. Writes the dataset's checks table (the jobs' rows and these) and
    the report's checks page; a failed check fails the run, saying what to change.
    """
    input:
        contributions="results/{dataset}/contributions/contributions.h5",
        job_checks="results/{dataset}/contributions/job_checks.tsv",
        models=fold_files("results/{dataset}/folds/{fold}/model/model.keras"),
        predictions=fold_files(
            "results/{dataset}/folds/{fold}/evaluation/test_predictions.tsv"
        ),
    output:
        checks=report(
            "results/{dataset}/contributions/checks.tsv",
            caption="report/checks_tsv.rst",
            category="6. Checks",
            subcategory="{dataset}",
            labels={"result": "checks.tsv (download)"},
        ),
        checks_html=report(
            "results/{dataset}/contributions/checks.html",
            caption="report/contribution_checks.rst",
            category="6. Checks",
            subcategory="{dataset}",
            labels={"result": "contribution checks (page)"},
        ),
    log:
        "logs/{dataset}/verify_contributions.log",
    benchmark:
        "benchmarks/{dataset}/verify_contributions.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        cfg=section("attribution"),
    script:
        "../scripts/verify_contributions.py"


rule write_contribution_track:
    """Per-base contributions (first task, positives) as a bigWig in genome coordinates."""
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
        overlap=setting("attribution", "track_overlap"),
    script:
        "../scripts/write_contribution_track.py"
