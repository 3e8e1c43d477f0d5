# peak2motif: genomic regions -> regularized CNN -> DeepLIFT -> TF-MoDISco motifs -> report.
#
# Layout of what it writes (NAME is a key of `datasets:` in the config, K a fold, S a shard):
#
# resources/SIM/                        demo data made by `simulate_demo` (genome, peaks, truth)
# results/NAME/sequences/               regions.tsv, summary.tsv/.html, gc.png
# results/NAME/signal/                  count bigWigs made from BAM/fragments (signal datasets)
# results/NAME/folds/K/sequences/       {train,valid,test}.h5 of fold K
# results/NAME/folds/K/model/           model.keras, model.h5, history.tsv
# results/NAME/folds/K/evaluation/      metrics.tsv, test_predictions.tsv
# results/NAME/folds/K/contributions/   shard_S.h5/.tsv, crosscheck.tsv
# results/NAME/sweep/                   summary.tsv/.html and the selected models (with `sweep:`)
# results/NAME/evaluation/              metrics.tsv/.html (per fold and pooled), curves
# results/NAME/contributions/           contributions.h5, checks.tsv/.html, contributions.bw
# results/NAME/motifs/                  motifs.tsv/.meme/.html, patterns.tsv, logos/,
#                                       instances/ (BED per motif), TASK/modisco.h5
# results/NAME/variants/                variants.tsv/.html (with a VCF)
# results/NAME/provenance/              resolved config.yaml and software versions
# logs/NAME/RULE.log, logs/NAME/RULE/WILDCARDS.log      one log per job
# benchmarks/NAME/RULE.tsv, benchmarks/NAME/RULE/...    time and memory per job
# `snakemake --report report.html` gathers the pages, figures and tables into one file.

from snakemake.utils import min_version

min_version("9.27.1")


configfile: "config/config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/signal.smk"
include: "rules/train.smk"
include: "rules/attribute.smk"
include: "rules/motifs.smk"
include: "rules/variants.smk"
include: "rules/provenance.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
