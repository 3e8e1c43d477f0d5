# Training stage: train_model (or one train_sweep_point job per grid point + select_model),
# then evaluate_model. Per-epoch checkpoints go to results/NAME/model/checkpoint/ (or
# results/NAME/sweep/POINT/checkpoint/), which is deliberately not an output: Snakemake
# deletes the outputs of a killed job but not that folder, so the rerun resumes from the last
# finished epoch. It is removed once training succeeds.


if not SWEEP_POINTS:

    rule train_model:
        """Train the dataset's CNN on the train split, early-stopping on the valid split."""
        input:
            unpack(training_inputs),
        output:
            model="results/{dataset}/model/model.keras",
            h5="results/{dataset}/model/model.h5",
            history="results/{dataset}/model/history.tsv",
        log:
            "logs/{dataset}/train_model.log",
        benchmark:
            "benchmarks/{dataset}/train_model.tsv"
        conda:
            "../envs/tensorflow.yaml"
        threads: lookup(dpath="training/threads", within=config)
        resources:
            mem_mb=lookup(dpath="training/mem_mb", within=config),
            runtime=lookup(dpath="training/runtime", within=config),
            gpu=1,
        params:
            model=lookup(dpath="model", within=config),
            training=lookup(dpath="training", within=config),
            freeze_convolutions=frozen_convolutions,
        script:
            "../scripts/train_model.py"

else:

    rule train_sweep_point:
        """Train one point of the hyperparameter sweep and score it on the valid split."""
        input:
            unpack(training_inputs),
        output:
            model=f"results/{{dataset}}/sweep/{SWEEP.wildcard_pattern}/model.keras",
            h5=f"results/{{dataset}}/sweep/{SWEEP.wildcard_pattern}/model.h5",
            history=f"results/{{dataset}}/sweep/{SWEEP.wildcard_pattern}/history.tsv",
            metrics=f"results/{{dataset}}/sweep/{SWEEP.wildcard_pattern}/metrics.tsv",
        log:
            f"logs/{{dataset}}/train_sweep_point/{SWEEP.wildcard_pattern}.log",
        benchmark:
            f"benchmarks/{{dataset}}/train_sweep_point/{SWEEP.wildcard_pattern}.tsv"
        wildcard_constraints:
            point=SWEEP_POINT_PATTERN,
        conda:
            "../envs/tensorflow.yaml"
        threads: lookup(dpath="training/threads", within=config)
        resources:
            mem_mb=lookup(dpath="training/mem_mb", within=config),
            runtime=lookup(dpath="training/runtime", within=config),
            gpu=1,
        params:
            model=lookup(dpath="model", within=config),
            training=lookup(dpath="training", within=config),
            overrides=sweep_point_overrides,
            freeze_convolutions=frozen_convolutions,
        script:
            "../scripts/train_sweep_point.py"

    rule select_model:
        """Summarise the sweep and keep the best point (by a validation metric) as the model."""
        input:
            model=expand(
                "results/{{dataset}}/sweep/{point}/model.keras", point=SWEEP_POINTS
            ),
            h5=expand("results/{{dataset}}/sweep/{point}/model.h5", point=SWEEP_POINTS),
            history=expand(
                "results/{{dataset}}/sweep/{point}/history.tsv", point=SWEEP_POINTS
            ),
            metrics=expand(
                "results/{{dataset}}/sweep/{point}/metrics.tsv", point=SWEEP_POINTS
            ),
        output:
            summary="results/{dataset}/sweep/summary.tsv",
            summary_html=report(
                "results/{dataset}/sweep/summary.html",
                caption="report/sweep_summary.rst",
                category="2. Training",
            ),
            model="results/{dataset}/model/model.keras",
            h5="results/{dataset}/model/model.h5",
            history="results/{dataset}/model/history.tsv",
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
            metric=lookup(dpath="sweep/metric", within=config),
        script:
            "../scripts/select_model.py"


rule evaluate_model:
    """Predict the valid and test splits; write metrics, ROC/PR curves and training curves."""
    input:
        model="results/{dataset}/model/model.keras",
        history="results/{dataset}/model/history.tsv",
        valid="results/{dataset}/sequences/valid.h5",
        test="results/{dataset}/sequences/test.h5",
    output:
        metrics="results/{dataset}/evaluation/metrics.tsv",
        metrics_html=report(
            "results/{dataset}/evaluation/metrics.html",
            caption="report/metrics.rst",
            category="3. Evaluation",
        ),
        curves=report(
            "results/{dataset}/evaluation/curves.png",
            caption="report/curves.rst",
            category="3. Evaluation",
        ),
        training_curves=report(
            "results/{dataset}/evaluation/training_curves.png",
            caption="report/training_curves.rst",
            category="2. Training",
        ),
    log:
        "logs/{dataset}/evaluate_model.log",
    benchmark:
        "benchmarks/{dataset}/evaluate_model.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: lookup(dpath="training/threads", within=config)
    resources:
        mem_mb=lookup(dpath="training/mem_mb", within=config),
        runtime=30,
    params:
        batch_size=lookup(dpath="training/batch_size", within=config),
        average_strands=lookup(
            dpath="training/reverse_complement/average_predictions", within=config
        ),
    script:
        "../scripts/evaluate_model.py"
