#!/usr/bin/env bash
# A real single-node SLURM on localhost, for CI and for trying profiles/slurm-local:
#
#   .ci/slurm-local.sh [start]   install (apt), configure and start munged, slurmctld and
#                                slurmd; wait until the node is idle. Idempotent: a second
#                                call with the same configuration only checks the node.
#   .ci/slurm-local.sh stop      stop the daemons by the PIDs in /run/slurm-local/
#   .ci/slurm-local.sh status    print the daemons' PIDs and `sinfo`
#
# Needs root (or passwordless sudo) and Debian/Ubuntu packages; no systemd needed. One
# partition `debug` with this machine's CPUs, 95 % of its memory and one fake GPU gres
# (/dev/fakegpu0, a character device with /dev/null's numbers, so that SLURM sets
# CUDA_VISIBLE_DEVICES). No accounting (no slurmdbd): Snakemake must poll job status
# with `--slurm-status-command squeue` (profiles/slurm-local does). How and why:
# /work/shared/notes/slurm-local.md.
set -euo pipefail

if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n -E bash "$0" "$@"
    fi
    echo "slurm-local: needs root (or passwordless sudo)" >&2
    exit 1
fi

RUN=/run/slurm-local
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm
FAKE_GPU=/dev/fakegpu0
PACKAGES=(slurmctld slurmd slurm-client munge)
WAIT_S=${SLURM_LOCAL_WAIT_S:-60}

log() { echo "slurm-local: $*" >&2; }

pid_alive() { # pid_alive FILE -> 0 when the PID in FILE is a live process
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

stop_pid() { # stop_pid NAME: TERM, wait up to 15 s, then KILL; by PID file only
    local f=$RUN/$1.pid pid
    if pid_alive "$f"; then
        pid=$(<"$f")
        log "stopping $1 (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$1 (pid $pid) ignored TERM; killing"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$f"
}

stop_all() {
    # slurmd first, so that the controller sees nothing odd; munged last (both use it).
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
    rm -f "$RUN/config.sha256"
}

log_tail() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        [[ -f $f ]] && { echo "---- tail $f" >&2; tail -n 25 "$f" >&2; }
    done
    return 0
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get install -y -q --no-install-recommends "${missing[@]}")
    if ! "${apt[@]}" >/tmp/slurm-local-apt.log 2>&1; then
        log "install failed; apt-get update and retry"
        apt-get update -q >>/tmp/slurm-local-apt.log 2>&1 || true
        "${apt[@]}" >>/tmp/slurm-local-apt.log 2>&1 || {
            tail -n 30 /tmp/slurm-local-apt.log >&2
            exit 1
        }
    fi
    # On a machine with systemd the postinst scripts may have started the packaged
    # services with the packaged config; this script runs its own daemons instead.
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl stop slurmd slurmctld 2>/dev/null || true
    fi
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0 # ours from an earlier call, or the system's
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    rm -f "$RUN/munged.pid"
    # munged forks; it runs as `munge`, so its own PID file goes where munge may write,
    # and a copy goes beside the others.
    runuser -u munge -- /usr/sbin/munged --force --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    cp /run/munge/munged.pid "$RUN/munged.pid"
    munge -n | unmunge >/dev/null || {
        log "munged does not answer"
        log_tail
        exit 1
    }
}

write_config() { # write_config DIR: slurm.conf and gres.conf for this machine into DIR
    local out=$1 node layout mem cpus
    node=$(hostname -s)
    # `slurmd -C` prints e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1
    # CoresPerSocket=2 ThreadsPerCore=1 RealMemory=23996"
    layout=$(slurmd -C | head -n 1)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$layout")
    cpus=$(grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$layout")
    [[ -n $mem && -n $cpus ]] || {
        log "cannot parse 'slurmd -C': $layout"
        exit 1
    }
    # RealMemory above what slurmd measures would drain the node.
    mem=$((mem * 95 / 100))
    cat >"$out/slurm.conf" <<EOF
# Written by .ci/slurm-local.sh: single-node SLURM on localhost, no accounting.
ClusterName=localci
SlurmctldHost=$node(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
# no cgroups: CI containers rarely allow them
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
# no slurmdbd: use squeue for job status; never AccountingStorageTRES=gres/gpu here
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
# finished jobs stay in 'squeue --states=all' for an hour (the squeue status check needs it)
MinJobAge=3600
# reject impossible requests at sbatch instead of pending forever
EnforcePartLimits=ALL
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 $cpus RealMemory=$mem Gres=gpu:fake:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    echo "NodeName=$node Name=gpu Type=fake File=$FAKE_GPU" >"$out/gres.conf"
}

make_fake_gpu() {
    [[ -c $FAKE_GPU ]] && return 0
    rm -f "$FAKE_GPU"
    if ! mknod -m 0666 "$FAKE_GPU" c 1 3 2>/dev/null; then
        log "WARNING: mknod $FAKE_GPU failed (no CAP_MKNOD?); using a plain file:" \
            "the gpu gres is still scheduled but jobs get no CUDA_VISIBLE_DEVICES"
        touch "$FAKE_GPU"
        chmod 0666 "$FAKE_GPU"
    fi
}

node_state() {
    timeout 5 sinfo --noheader --Node --format='%T' 2>/dev/null | head -n 1
}

wait_idle() {
    local state="" deadline=$((SECONDS + WAIT_S))
    while ((SECONDS < deadline)); do
        for d in slurmctld slurmd; do
            pid_alive "$RUN/$d.pid" || {
                # slurmctld/slurmd write their PID file after forking; give them a moment
                sleep 0.5
                pid_alive "$RUN/$d.pid" || {
                    log "$d died"
                    log_tail
                    exit 1
                }
            }
        done
        state=$(node_state || true)
        case $state in
        idle | mixed | allocated) return 0 ;;
        down* | drain*)
            # e.g. an unexpected reboot remembered from the saved state
            scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true
            ;;
        esac
        sleep 0.2
    done
    log "node not idle after ${WAIT_S} s (state: '${state:-no answer}')"
    log_tail
    exit 1
}

start() {
    local t0=$SECONDS tmp hash
    install_packages
    install -d -m 0755 "$RUN" "$CONF_DIR"
    start_munge
    make_fake_gpu
    tmp=$(mktemp -d)
    write_config "$tmp"
    hash=$(cat "$tmp/slurm.conf" "$tmp/gres.conf" | sha256sum | cut -d' ' -f1)
    if pid_alive "$RUN/slurmctld.pid" && pid_alive "$RUN/slurmd.pid" &&
        [[ -f $RUN/config.sha256 && $(<"$RUN/config.sha256") == "$hash" ]]; then
        rm -rf "$tmp"
        wait_idle
        log "already running; node idle"
        return 0
    fi
    # The running daemons (if any) were started with another config, or died: restart.
    stop_pid slurmd
    stop_pid slurmctld
    rm -f "$RUN/config.sha256"
    install -m 0644 "$tmp/slurm.conf" "$CONF_DIR/slurm.conf"
    install -m 0644 "$tmp/gres.conf" "$CONF_DIR/gres.conf"
    rm -rf "$tmp"
    install -d -o slurm -g slurm -m 0755 "$STATE_DIR/slurmctld" "$LOG_DIR"
    install -d -m 0755 "$STATE_DIR/slurmd"
    /usr/sbin/slurmctld || {
        log "slurmctld failed to start"
        log_tail
        exit 1
    }
    /usr/sbin/slurmd || {
        log "slurmd failed to start"
        log_tail
        exit 1
    }
    echo "$hash" >"$RUN/config.sha256"
    wait_idle
    log "node $(hostname -s) idle after $((SECONDS - t0)) s"
}

status() {
    local d
    for d in munged slurmctld slurmd; do
        if pid_alive "$RUN/$d.pid"; then echo "$d: pid $(<"$RUN/$d.pid")"; else echo "$d: not running"; fi
    done
    timeout 5 sinfo || true
}

case ${1:-start} in
start) start ;;
stop) stop_all ;;
status) status ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
