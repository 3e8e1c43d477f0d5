# Training stage: one model per fold (train_model, or one train_sweep_point job per fold and
# grid point + select_model), then evaluate_model per fold and summarize_evaluation, which
# pools the folds. Per-epoch checkpoints go to results/NAME/folds/K/model/checkpoint/ (or the
# sweep point's folder), which is deliberately not an output: Snakemake deletes the outputs
# of a killed job but not that folder, so the rerun resumes from the last finished epoch.
# It is removed once training succeeds.


if not SWEEP_POINTS:

    rule train_model:
        """Train one fold's CNN on its train split, early-stopping on its valid split."""
        input:
            unpack(training_inputs),
        output:
            model="results/{dataset}/folds/{fold}/model/model.keras",
            h5="results/{dataset}/folds/{fold}/model/model.h5",
            history="results/{dataset}/folds/{fold}/model/history.tsv",
        log:
            "logs/{dataset}/train_model/{fold}.log",
        benchmark:
            "benchmarks/{dataset}/train_model/{fold}.tsv"
        conda:
            "../envs/tensorflow.yaml"
        threads: setting("training", "threads")
        resources:
            mem_mb=measured("train_model", "mem_mb", ("training", "mem_mb")),
            runtime=setting("training", "runtime"),
            gpu=1,
        params:
            model=section("model"),
            training=section("training"),
            freeze_convolutions=frozen_convolutions,
        script:
            "../scripts/train_model.py"

else:

    rule train_sweep_point:
        """Train one point of the hyperparameter sweep on one fold; score it on its valid
        split."""
        input:
            unpack(training_inputs),
        output:
            model=f"results/{{dataset}}/folds/{{fold}}/sweep/{SWEEP.wildcard_pattern}/model.keras",
            h5=f"results/{{dataset}}/folds/{{fold}}/sweep/{SWEEP.wildcard_pattern}/model.h5",
            history=f"results/{{dataset}}/folds/{{fold}}/sweep/{SWEEP.wildcard_pattern}/history.tsv",
            metrics=f"results/{{dataset}}/folds/{{fold}}/sweep/{SWEEP.wildcard_pattern}/metrics.tsv",
        log:
            f"logs/{{dataset}}/train_sweep_point/{{fold}}/{SWEEP.wildcard_pattern}.log",
        benchmark:
            f"benchmarks/{{dataset}}/train_sweep_point/{{fold}}/{SWEEP.wildcard_pattern}.tsv"
        wildcard_constraints:
            point=SWEEP_POINT_PATTERN,
        conda:
            "../envs/tensorflow.yaml"
        threads: setting("training", "threads")
        resources:
            mem_mb=measured("train_sweep_point", "mem_mb", ("training", "mem_mb")),
            runtime=setting("training", "runtime"),
            gpu=1,
        params:
            model=section("model"),
            training=section("training"),
            overrides=sweep_point_overrides,
            freeze_convolutions=frozen_convolutions,
        script:
            "../scripts/train_sweep_point.py"

    rule select_model:
        """Summarise the sweep and keep the best point (by its validation metric averaged
        over folds) as every fold's model."""
        input:
            metrics=sweep_files("metrics.tsv"),
            history=sweep_files("history.tsv"),
            model=sweep_files("model.keras"),
            h5=sweep_files("model.h5"),
        output:
            summary="results/{dataset}/sweep/summary.tsv",
            summary_html=report(
                "results/{dataset}/sweep/summary.html",
                caption="report/sweep_summary.rst",
                category="2. Training",
                subcategory="{dataset}",
                labels={"result": "sweep table (page)"},
            ),
            models=directory("results/{dataset}/sweep/selected"),
        log:
            "logs/{dataset}/select_model.log",
        benchmark:
            "benchmarks/{dataset}/select_model.tsv"
        conda:
            "../envs/tensorflow.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            points=list(SWEEP_POINTS),
            overrides=list(SWEEP_POINTS.values()),
            folds=n_folds,
            metric=lookup(dpath="sweep/metric", within=config),
        script:
            "../scripts/select_model.py"

    rule copy_selected_model:
        """The selected sweep point's model of one fold, as that fold's model."""
        input:
            "results/{dataset}/sweep/selected",
        output:
            model="results/{dataset}/folds/{fold}/model/model.keras",
            h5="results/{dataset}/folds/{fold}/model/model.h5",
            history="results/{dataset}/folds/{fold}/model/history.tsv",
        log:
            "logs/{dataset}/copy_selected_model/{fold}.log",
        conda:
            "../envs/sequences.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        shell:
            "for f in model.keras model.h5 history.tsv; do cp {input}/{wildcards.fold}/$f "
            "results/{wildcards.dataset}/folds/{wildcards.fold}/model/$f; done 2> {log}"


rule evaluate_model:
    """Predict one fold's valid and test splits; write its metrics and test predictions."""
    input:
        unpack(split_files),
        model="results/{dataset}/folds/{fold}/model/model.keras",
        regions="results/{dataset}/sequences/regions.tsv",
    output:
        metrics="results/{dataset}/folds/{fold}/evaluation/metrics.tsv",
        predictions="results/{dataset}/folds/{fold}/evaluation/test_predictions.tsv",
    log:
        "logs/{dataset}/evaluate_model/{fold}.log",
    benchmark:
        "benchmarks/{dataset}/evaluate_model/{fold}.tsv"
    conda:
        "../envs/tensorflow.yaml"
    # prediction only (seconds, mostly the TensorFlow import): one core, so that it runs
    # beside crosscheck_contributions instead of after it
    threads: 1
    resources:
        mem_mb=measured("evaluate_model", "mem_mb", ("training", "mem_mb")),
        runtime=30,
    params:
        batch_size=setting("training", "batch_size"),
        average_strands=setting("training", "reverse_complement", "average_predictions"),
    script:
        "../scripts/evaluate_model.py"


rule summarize_evaluation:
    """Metrics per fold and pooled over the folds' test splits (each region predicted by a
    model that never saw it), ROC/PR curves and training curves."""
    input:
        metrics=fold_files("results/{dataset}/folds/{fold}/evaluation/metrics.tsv"),
        predictions=fold_files(
            "results/{dataset}/folds/{fold}/evaluation/test_predictions.tsv"
        ),
        history=fold_files("results/{dataset}/folds/{fold}/model/history.tsv"),
        regions="results/{dataset}/sequences/regions.tsv",
    output:
        metrics=report(
            "results/{dataset}/evaluation/metrics.tsv",
            caption="report/metrics_tsv.rst",
            category="3. Evaluation",
            subcategory="{dataset}",
            labels={"result": "metrics.tsv (download)"},
        ),
        metrics_html=report(
            "results/{dataset}/evaluation/metrics.html",
            caption="report/metrics.rst",
            category="3. Evaluation",
            subcategory="{dataset}",
            labels={"result": "metrics (page)"},
        ),
        curves=report(
            "results/{dataset}/evaluation/curves.png",
            caption="report/curves.rst",
            category="3. Evaluation",
            subcategory="{dataset}",
            labels={"result": "ROC and PR curves"},
        ),
        training_curves=report(
            "results/{dataset}/evaluation/training_curves.png",
            caption="report/training_curves.rst",
            category="2. Training",
            subcategory="{dataset}",
            labels={"result": "training curves"},
        ),
    log:
        "logs/{dataset}/summarize_evaluation.log",
    benchmark:
        "benchmarks/{dataset}/summarize_evaluation.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        task_type=task_type,
        monitor=setting("training", "early_stopping", "monitor"),
    script:
        "../scripts/summarize_evaluation.py"
