# A one-rule workflow whose only job fails: the SLURM test checks that the failure is
# reported (with its retry) and that Snakemake stops instead of waiting forever.


rule fail_on_purpose:
    """Exit with status 3."""
    output:
        "never.txt",
    log:
        "logs/fail_on_purpose.log",
    threads: 1
    resources:
        mem_mb=100,
        runtime=2,
    shell:
        "echo 'failing on purpose' > {log}; exit 3"
