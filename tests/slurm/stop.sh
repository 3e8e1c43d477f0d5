#!/usr/bin/env bash
# Stop the daemons started by start.sh (by the PIDs they wrote) and restore /etc/slurm.
#
#   tests/slurm/stop.sh STATE_DIR
set -uo pipefail
state=$(realpath -m "${1:?usage: stop.sh STATE_DIR}")
scancel --full --quiet --user=root 2>/dev/null || true
for name in slurmd slurmctld munged; do
    pidfile="$state/run/$name.pid"
    [[ -s $pidfile ]] || continue
    pid=$(<"$pidfile")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
done
for f in slurm.conf gres.conf; do
    rm -f "/etc/slurm/$f"
    if [[ -e $state/etc-backup/$f ]]; then
        mv "$state/etc-backup/$f" "/etc/slurm/$f"
    fi
done
exit 0
