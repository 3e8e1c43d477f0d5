# Motif stage: TF-MoDISco-lite on each task's hypothetical contributions, then filtering,
# trimming, the null calibration against matched negatives, and TomTom (memelite) against
# JASPAR (pyjaspar, offline) or the user's MEME file. numba compiles into .snakemake/numba
# once, so later runs skip the 60-90 s of compilation.


rule discover_motifs:
    """TF-MoDISco-lite on one task's positives (window = sequence length), on a seeded
    shuffle of the sequences (its max_seqlets keeps seqlets in input order)."""
    input:
        contributions="results/{dataset}/contributions/contributions.h5",
    output:
        modisco="results/{dataset}/motifs/{task}/modisco.h5",
    log:
        "logs/{dataset}/discover_motifs/{task}.log",
    benchmark:
        "benchmarks/{dataset}/discover_motifs/{task}.tsv"
    conda:
        "../envs/motifs.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        cfg=section("motifs"),
    script:
        "../scripts/discover_motifs.py"


rule match_motifs:
    """Keep patterns that are enriched in the task's positives over its matched negatives,
    trim them, match them with TomTom (q-values); write the motif table (one row per pattern,
    with its task), a MEME file, logos and an HTML page; on the demo, also the fraction of
    each pattern's seqlets that lie on planted motifs."""
    input:
        unpack(motif_match_inputs),
        contributions="results/{dataset}/contributions/contributions.h5",
        regions="results/{dataset}/sequences/regions.tsv",
    output:
        table=report(
            "results/{dataset}/motifs/motifs.tsv",
            caption="report/motifs_tsv.rst",
            category="5. Motifs",
            subcategory="{dataset}",
            labels={"result": "motifs.tsv (download)"},
        ),
        patterns=report(
            "results/{dataset}/motifs/patterns.tsv",
            caption="report/patterns_tsv.rst",
            category="5. Motifs",
            subcategory="{dataset}",
            labels={"result": "patterns.tsv (download)"},
        ),
        meme=report(
            "results/{dataset}/motifs/motifs.meme",
            caption="report/motifs_meme.rst",
            category="5. Motifs",
            subcategory="{dataset}",
            labels={"result": "motifs.meme (download)"},
        ),
        logos=directory("results/{dataset}/motifs/logos"),
        examples=report(
            "results/{dataset}/motifs/examples.png",
            caption="report/motif_examples.rst",
            category="4. Contributions",
            subcategory="{dataset}",
            labels={"result": "an example of each motif"},
        ),
        html=report(
            "results/{dataset}/motifs/motifs.html",
            caption="report/motifs.rst",
            category="5. Motifs",
            subcategory="{dataset}",
            labels={"result": "motif table (page)"},
        ),
    log:
        "logs/{dataset}/match_motifs.log",
    benchmark:
        "benchmarks/{dataset}/match_motifs.tsv"
    conda:
        "../envs/motifs.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cfg=section("motifs"),
        tasks=dataset_tasks,
    script:
        "../scripts/match_motifs.py"


rule call_instances:
    """Instances of every reported motif in genome coordinates (bgzip + tabix BED per
    motif), a peak x motif count table, their positions around summits and co-occurrence.
    """
    input:
        unpack(motif_match_inputs),
        table="results/{dataset}/motifs/motifs.tsv",
        patterns="results/{dataset}/motifs/patterns.tsv",
        contributions="results/{dataset}/contributions/contributions.h5",
        regions="results/{dataset}/sequences/regions.tsv",
    output:
        beds=report(
            directory("results/{dataset}/motifs/instances"),
            patterns=["{name}.bed.gz"],
            caption="report/instances_bed.rst",
            category="5. Motifs",
            subcategory="{dataset}",
            labels={"result": "instances {name}.bed.gz (download)"},
        ),
        counts="results/{dataset}/motifs/instance_counts.tsv",
        figure="results/{dataset}/motifs/instances.png",
        html=report(
            "results/{dataset}/motifs/instances.html",
            caption="report/instances.rst",
            category="5. Motifs",
            subcategory="{dataset}",
            labels={"result": "motif instances (page)"},
        ),
    log:
        "logs/{dataset}/call_instances.log",
    benchmark:
        "benchmarks/{dataset}/call_instances.tsv"
    conda:
        "../envs/motifs.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cfg=section("motifs"),
        tasks=dataset_tasks,
    script:
        "../scripts/call_instances.py"
