#!/usr/bin/env bash
# Install Debian's Slurm (22.05) and munge when they are missing. Needs root and a package
# mirror; takes 15-20 s on a fresh Debian 12. The packages' own services are not started
# (start.sh starts private daemons instead).
set -euo pipefail
missing=()
for bin in slurmctld slurmd sbatch munged; do
    command -v "$bin" >/dev/null || missing+=("$bin")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: ${missing[*]} missing and not root: cannot apt-get install" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge
