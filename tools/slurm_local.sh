#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying and testing grid's
# array jobs (needs root and Debian's slurm-wlm and munge):
#   tools/slurm_local.sh start DIR   # config, state and pid files in DIR; waits until the node is idle
#   tools/slurm_local.sh stop DIR    # stops the daemons it started, by their pid files
# Prints SLURM_CONF=DIR/slurm.conf on start: export it for sbatch, squeue, scancel.
set -euo pipefail
cmd="${1:-}"
dir="${2:-}"
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
export SLURM_CONF="$dir/slurm.conf"

stop() {
  for name in slurmd slurmctld munged; do
    if [[ -f "$dir/$name.pid" ]]; then
      pid="$(cat "$dir/$name.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
  if [[ -f "$dir/munge.path" ]]; then
    rm -rf "$(cat "$dir/munge.path")"
    rm -f "$dir/munge.path"
  fi
}

if [[ "$cmd" == stop ]]; then
  stop
  exit 0
fi
if [[ "$cmd" != start ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
for bin in slurmctld slurmd munged mungekey sbatch; do
  command -v "$bin" >/dev/null || { echo "missing $bin: apt-get install slurm-wlm munge" >&2; exit 3; }
done
host="$(hostname -s)"
# ports of its own: another local cluster (a test running beside this one) keeps its own, and
# jobs submitted with this SLURM_CONF never reach that one's controller
listening() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=6817
while listening "$port" || listening "$((port + 1))"; do
  port=$((port + 2))
  if ((port > 6999)); then echo "no free port pair in 6817-6999" >&2; exit 3; fi
done
cpus="$(nproc)"
mem_mb="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))"
mkdir -p "$dir/state" "$dir/spool"
# munged runs as the munge user: its folder must be reachable by it (DIR may be a private temp folder)
munge_dir="$(mktemp -d /tmp/vitrep_munge.XXXXXX)"
chmod 755 "$munge_dir"
chown munge:munge "$munge_dir"
echo "$munge_dir" >"$dir/munge.path"
cat >"$SLURM_CONF" <<EOF
ClusterName=vitrep
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$munge_dir/munge.socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=600
SchedulerParameters=defer_batch
SchedulerType=sched/builtin
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
[[ -s /etc/munge/munge.key ]] || mungekey -c
# munged: its own socket and pid file, as the munge user
runuser -u munge -- /usr/sbin/munged --socket="$munge_dir/munge.socket" \
  --pid-file="$munge_dir/munged.pid" --log-file="$munge_dir/munged.log" --seed-file="$munge_dir/seed" --force
for _ in $(seq 50); do [[ -s "$munge_dir/munged.pid" ]] && break; sleep 0.1; done
cp "$munge_dir/munged.pid" "$dir/munged.pid"
slurmctld
slurmd
for _ in $(seq 300); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.1
done
echo "the node did not become idle within 30 s; see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1
