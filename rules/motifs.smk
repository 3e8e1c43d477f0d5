# Motif stage: TF-MoDISco-lite on the hypothetical contributions, then filtering, trimming and
# TomTom (memelite) against JASPAR (pyjaspar, offline) or the user's MEME file.


rule discover_motifs:
    """TF-MoDISco-lite on the hypothetical contributions, window = sequence length, on a seeded
    shuffle of the sequences (its max_seqlets keeps seqlets in input order)."""
    input:
        contributions="results/{dataset}/contributions/contributions.h5",
    output:
        modisco="results/{dataset}/motifs/modisco.h5",
    log:
        "logs/{dataset}/discover_motifs.log",
    benchmark:
        "benchmarks/{dataset}/discover_motifs.tsv"
    conda:
        "../envs/motifs.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        cfg=lookup(dpath="motifs", within=config),
    script:
        "../scripts/discover_motifs.py"


rule match_motifs:
    """Keep patterns with enough seqlets, trim them to informative positions, match them with
    TomTom (q-values), write the motif table, a MEME file, logos and an HTML page; on the demo,
    also the fraction of each pattern's seqlets that lie on planted motifs."""
    input:
        unpack(motif_match_inputs),
        modisco="results/{dataset}/motifs/modisco.h5",
        contributions="results/{dataset}/contributions/contributions.h5",
        regions="results/{dataset}/sequences/regions.tsv",
    output:
        table="results/{dataset}/motifs/motifs.tsv",
        patterns="results/{dataset}/motifs/patterns.tsv",
        meme="results/{dataset}/motifs/motifs.meme",
        logos=directory("results/{dataset}/motifs/logos"),
        html=report(
            "results/{dataset}/motifs/motifs.html",
            caption="report/motifs.rst",
            category="5. Motifs",
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
        cfg=lookup(dpath="motifs", within=config),
    script:
        "../scripts/match_motifs.py"
