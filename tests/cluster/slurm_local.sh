#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (Debian packages slurm-wlm + munge).
#   tests/cluster/slurm_local.sh start [STATE_DIR]   install if needed, configure, start, wait idle
#   tests/cluster/slurm_local.sh stop  [STATE_DIR]   stop the daemons by the PIDs in their pid files
# Also a recipe for users who want to try the SLURM profile on one machine. Needs root.
# Without accounting (slurmdbd), sacct reports nothing: profiles/slurm polls with squeue.
set -euo pipefail

action=${1:?usage: slurm_local.sh start|stop [STATE_DIR]}
state=${2:-/tmp/nsr-slurm}
# The default config path: snakemake-executor-plugin-slurm-jobstep strips every SLURM_* variable
# (SLURM_CONF included) before its inner srun, so a config elsewhere is not found inside jobs.
export SLURM_CONF=/etc/slurm/slurm.conf
MARKER="# written by nsr tests/cluster/slurm_local.sh"

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "SKIP: slurm-wlm/munge missing and not root to install them" >&2; exit 3; }
  command -v apt-get >/dev/null || { echo "SKIP: no apt-get to install slurm-wlm/munge" >&2; exit 3; }
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge; } \
    >"$state/apt.log" 2>&1 || { echo "SKIP: apt-get install slurm-wlm munge failed (see $state/apt.log)" >&2; exit 3; }
}

write_config() {
  if [ -e "$SLURM_CONF" ] && ! grep -qF "$MARKER" "$SLURM_CONF"; then
    echo "SKIP: $SLURM_CONF exists and was not written by this script; not touching a real cluster" >&2; exit 3
  fi
  mkdir -p "$(dirname "$SLURM_CONF")" "$state/spool/ctld" "$state/spool/d" "$state/log" "$state/run"
  local cpus mem host
  cpus=$(nproc)
  # A little under free memory, in MB, so the node registers.
  mem=$(awk '/MemAvailable/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  host=$(hostname -s)
  cat >"$SLURM_CONF" <<CONF
$MARKER (state in $state)
ClusterName=nsrlocal
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  install -d -o munge -g munge -m 0755 /run/munge
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  if ! munge -n >/dev/null 2>&1; then
    # munged runs as user munge, which may not reach $state: keep its default pid file and copy
    # it here, so `stop` kills only the munged this script started.
    runuser -u munge -- munged
    for _ in $(seq 1 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$state/run/munged.pid"
  fi
}

case $action in
  start)
    mkdir -p "$state"
    install_packages
    write_config
    start_munge
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 1 60); do
      if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix)'; then
        echo "SLURM up: SLURM_CONF=$SLURM_CONF"; exit 0
      fi
      sleep 1
    done
    echo "SLURM did not become idle; logs in $state/log" >&2; sinfo >&2 || true; exit 1
    ;;
  stop)
    for pidfile in "$state/run/slurmd.pid" "$state/run/slurmctld.pid" "$state/run/munged.pid"; do
      if [ -s "$pidfile" ]; then
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      fi
    done
    grep -qF "$MARKER" "$SLURM_CONF" 2>/dev/null && rm -f "$SLURM_CONF"
    echo "SLURM stopped"
    ;;
  *) echo "usage: $0 start|stop [STATE_DIR]" >&2; exit 2 ;;
esac
