#!/usr/bin/env bash
# Stops a cluster made by start-cluster.sh and removes its directory.
#
#   integration/ceph/stop-cluster.sh [DIR]
#
# DIR defaults as in start-cluster.sh ($CASFS_CEPH_DIR, else
# ${TMPDIR:-/tmp}/casfs-ceph). Daemons are found by the PIDs recorded in DIR,
# and only processes started with DIR's ceph.conf are signalled: TERM, up to
# 20 s to exit (a memstore OSD saves its data on a clean shutdown), then KILL.
# Idempotent: a missing DIR or dead daemons are not errors. A DIR that
# start-cluster.sh did not make is refused, never removed.
set -euo pipefail

dir=${1:-${CASFS_CEPH_DIR:-${TMPDIR:-/tmp}/casfs-ceph}}
marker=.casfs-ceph-cluster

log() { echo "stop-cluster: $*" >&2; }

if [[ ! -e $dir ]]; then
	log "no cluster in $dir: nothing to stop"
	exit 0
fi
dir=$(cd "$dir" && pwd)
if [[ ! -e $dir/$marker ]]; then
	log "error: $dir was not made by start-cluster.sh; leaving it alone"
	exit 1
fi
conf=$dir/ceph.conf

# alive PID: PID is a live (not zombie) process started with this cluster's
# ceph.conf, not one that reused the PID.
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	[[ ${stat##*\) } != Z* ]] || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "--conf $conf "
}

# wait_gone PID SECONDS: wait until PID has exited; false on timeout.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	! alive "$1"
}

# The OSD first: it tells the monitor it is going down.
for name in osd mon; do
	pidfile=$dir/$name.pid
	[[ -s $pidfile ]] || continue
	pid=$(<"$pidfile")
	if ! alive "$pid"; then
		log "$name (pid $pid) is not running"
		continue
	fi
	kill -TERM "$pid" 2>/dev/null || true
	if wait_gone "$pid" 20; then
		log "$name (pid $pid) stopped"
		continue
	fi
	log "$name (pid $pid) did not stop within 20 s of SIGTERM: killing it"
	kill -KILL "$pid" 2>/dev/null || true
	wait_gone "$pid" 5 || { log "error: $name (pid $pid) survived SIGKILL"; exit 1; }
done

rm -rf -- "$dir"
log "removed $dir"
