#!/usr/bin/env bash
# Stop the daemons started by .ci/slurm/start-slurm.sh, by the PIDs in their pidfiles,
# in reverse start order. Jobs still in the queue are cancelled first.
#   SLURM_CLEAN=1  also wipe slurmctld/slurmd state and drop the accounting
#                  database (job ids restart at 1).
set -uo pipefail

log() { echo "[stop-slurm] $*"; }

stop_pidfile() { # stop_pidfile NAME PIDFILE
    local name=$1 pidfile=$2 pid i
    if [ ! -s "$pidfile" ]; then log "$name: no pidfile"; return 0; fi
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        log "$name: pid $pid not running"; rm -f "$pidfile"; return 0
    fi
    kill -TERM "$pid"
    for i in $(seq 1 100); do          # up to 10 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: pid $pid still alive after 10 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
    log "$name: stopped pid $pid"
}

if [ -s /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then
    if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
        log "cancelling remaining jobs: $(squeue -h -o %i | tr '\n' ' ')"
        scancel --full $(squeue -h -o %i) 2>/dev/null || true
        for i in $(seq 1 50); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

stop_pidfile slurmd    /run/slurmd.pid
stop_pidfile slurmctld /run/slurmctld.pid
stop_pidfile slurmdbd  /run/slurmdbd.pid
if [ "${SLURM_CLEAN:-0}" = 1 ] && [ -S /run/mysqld/mysqld.sock ]; then
    # job ids restart at 1 after a state wipe: old accounting records with the
    # same ids would make sacct (and so submitit) report stale job states
    mysql --socket=/run/mysqld/mysqld.sock -e "DROP DATABASE IF EXISTS slurm_acct_db" \
        && log "dropped accounting database slurm_acct_db"
fi
stop_pidfile mariadbd  /run/mysqld/mysqld.pid
stop_pidfile munged    /run/munge/munged.pid

if [ "${SLURM_CLEAN:-0}" = 1 ]; then
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
    log "wiped /var/spool/slurmctld and /var/spool/slurmd"
fi
