# peak2motif: genomic regions -> regularized CNN -> DeepLIFT -> TF-MoDISco motifs -> report.
#
# Layout of what it writes (NAME is a key of `datasets:` in the config):
#
# resources/SIM/                    demo data made by `simulate_demo` (genome, peaks, truth)
# results/NAME/sequences/           regions.tsv, {train,valid,test}.h5, summary.tsv
# results/NAME/model/               model.keras, model.h5 (for DeepLIFT), history.tsv
# results/NAME/sweep/               one folder per sweep point, summary.tsv
# results/NAME/evaluation/          metrics.tsv and curves
# results/NAME/contributions/       contributions.h5, checks.tsv, contributions.bw
# results/NAME/motifs/              motifs.tsv, motifs.meme, logos
# results/NAME/provenance/          resolved config and software versions
# logs/NAME/RULE.log                one log per rule
# benchmarks/NAME/RULE.tsv          time and memory per rule


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
