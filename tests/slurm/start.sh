#!/usr/bin/env bash
# Start a private single-node SLURM on 127.0.0.1: munged, slurmctld and slurmd, as root.
#
#   tests/slurm/start.sh STATE_DIR
#
# The node has two partitions: `cpu` (the default) and `gpu`, whose node carries one fake GPU
# (a gres file named nvidia0 that is a symlink to /dev/null: Slurm only needs a device node).
# Everything the daemons write (key, sockets, spool, logs, PID files) lives in STATE_DIR.
# slurm.conf must sit at the default path /etc/slurm/slurm.conf: the Snakemake SLURM plugin
# strips SLURM_CONF from the job environment. An existing /etc/slurm/{slurm,gres}.conf is
# moved aside to STATE_DIR and put back by stop.sh, which stops the daemons by PID.
set -euo pipefail
state=$(realpath -m "${1:?usage: start.sh STATE_DIR}")
mkdir -p "$state"/{spool/ctld,spool/d,log,run,dev,etc-backup}
chmod 700 "$state/run"
node=$(hostname -s)

# munge: its own key and socket, so a system munged (if any) is left alone.
socket="$state/run/munge.socket"
dd if=/dev/urandom of="$state/munge.key" bs=1024 count=1 status=none
chmod 400 "$state/munge.key"
munged --force --key-file="$state/munge.key" --socket="$socket" \
    --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
    --seed-file="$state/run/munged.seed"

ln -sf /dev/null "$state/dev/nvidia0"

mkdir -p /etc/slurm
for f in slurm.conf gres.conf; do
    if [[ -e /etc/slurm/$f && ! -e $state/etc-backup/$f ]]; then
        mv "/etc/slurm/$f" "$state/etc-backup/$f"
    fi
done

# config_overrides: the node is what this file says (4 CPUs, 32 GB) whatever the machine has,
# so rules that ask for more than a small CI machine has still get scheduled. Nothing is
# enforced (task/none), which is fine for a test.
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=p2mtest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.log
MpiDefault=none
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=4 RealMemory=32000 Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$node Default=NO MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
NodeName=$node Name=gpu File=$state/dev/nvidia0
CONF

slurmctld -i -L "$state/log/slurmctld.log"
slurmd -L "$state/log/slurmd.log"

# Ready when the node is idle. Each sinfo is bounded: without a controller it retries for long.
for _ in $(seq 30); do
    if [[ $(timeout 5 sinfo -h -N -o '%t' -p cpu 2>/dev/null) == idle* ]]; then
        exit 0
    fi
    kill -0 "$(cat "$state/run/slurmctld.pid" 2>/dev/null)" 2>/dev/null || break
    sleep 1
done
echo "start.sh: the SLURM node did not become idle; see $state/log" >&2
tail -n 20 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 || true
exit 1
