#!/usr/bin/env bash
# A single-node SLURM cluster on this machine: munged, slurmctld and slurmd on localhost with
# one partition ("debug"), every file under one folder, nothing in /etc changed.
#
#   scripts/slurm_local.sh start [DIR]   install (root, Debian) if missing, start, wait for idle
#   scripts/slurm_local.sh stop [DIR]    stop the daemons this script started in DIR
#
# DIR defaults to $SLURM_LOCAL_DIR, else /tmp/slurm-local. After `start`, point the SLURM
# commands (sbatch, squeue, scancel, sinfo) at the cluster with
#   export SLURM_CONF=DIR/slurm.conf
# Any user may run it once the packages are installed (daemons and jobs run as that user).
# Exit status 3: SLURM is missing and cannot be installed here (not root, or no apt-get);
# the reason is printed on stderr. Ports: $SLURM_LOCAL_PORT (slurmctld, default 6817) and
# the next one (slurmd).
set -euo pipefail

cmd=${1:-}
dir=${2:-${SLURM_LOCAL_DIR:-/tmp/slurm-local}}
port=${SLURM_LOCAL_PORT:-6817}
conf=$dir/slurm.conf

die() { echo "slurm_local: $1" >&2; exit "${2:-1}"; }

install_if_missing() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null && return
    [ "$(id -u)" = 0 ] || die "slurmctld/slurmd/munged not installed and not root: install \
the Debian packages slurm-wlm and munge (apt-get install slurm-wlm munge)" 3
    command -v apt-get >/dev/null || die "slurmctld/slurmd/munged not installed and no \
apt-get to install slurm-wlm and munge" 3
    echo "slurm_local: installing slurm-wlm and munge (apt-get)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge >&2
}

write_conf() {
    mkdir -p "$dir"/{munge,ctld,spool,log}
    chmod 700 "$dir/munge"
    [ -s "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key"
    # The hardware line slurmd itself detects (CPUs, sockets, cores, memory), so the node
    # is never refused for claiming more than it has.
    local node
    node=$(slurmd -C | head -n 1)
    cat >"$conf" <<EOF
ClusterName=local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CryptoType=crypto/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
# scancel sends SIGTERM, which submitit ignores, then SIGKILL after KillWait (SLURM's default:
# 30 s); 0 here, so a cancelled task stops at once
KillWait=0
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$(hostname -s) Default=YES MaxTime=INFINITE State=UP
EOF
}

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    install_if_missing
    write_conf
    trap stop EXIT  # a daemon that fails to start: stop the others
    export SLURM_CONF=$conf
    running "$dir/munge/munged.pid" || munged --force \
        --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    running "$dir/slurmctld.pid" || slurmctld -f "$conf"
    running "$dir/slurmd.pid" || slurmd -f "$conf"
    local state=""
    for _ in $(seq 120); do
        state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
        [ "$state" = idle ] && break
        sleep 0.5
    done
    [ "$state" = idle ] || die "node not idle after 60 s (state '${state:-none}'); logs in $dir/log"
    trap - EXIT
    echo "slurm_local: cluster up, partition debug; export SLURM_CONF=$conf" >&2
}

stop() {
    for name in slurmd slurmctld munge/munged; do
        local pidfile=$dir/$name.pid
        if running "$pidfile"; then
            local pid
            pid=$(cat "$pidfile")
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
    done
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop [DIR]" 2 ;;
esac
