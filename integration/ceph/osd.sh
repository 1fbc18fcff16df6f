#!/usr/bin/env bash
# Stops or starts again the OSD of a cluster made by start-cluster.sh, for
# tests of how casfs behaves while the cluster cannot serve I/O.
#
#   integration/ceph/osd.sh stop|start [DIR]
#
# stop sends TERM to the OSD recorded in DIR/osd.pid and waits for it to
# exit (a memstore OSD saves its data on a clean shutdown, so nothing is
# lost); start runs it again, records its PID and waits until the pool takes
# a write. DIR defaults as in start-cluster.sh. Every wait is bounded
# (CASFS_CEPH_WAIT seconds, 60 by default).
set -euo pipefail

what=${1:?usage: osd.sh stop|start [DIR]}
dir=${2:-${CASFS_CEPH_DIR:-${TMPDIR:-/tmp}/casfs-ceph}}
wait_s=${CASFS_CEPH_WAIT:-60}
[[ -e $dir/.casfs-ceph-cluster ]] || { echo "osd.sh: $dir is not a cluster made by start-cluster.sh" >&2; exit 1; }
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
pool=casfs-test

alive() {
	local pid stat
	[[ -s $dir/osd.pid ]] || return 1
	pid=$(<"$dir/osd.pid")
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ ${stat##*\) } != Z* ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--conf $conf "
}

# wait_for WHAT CMD...: run CMD every 0.2 s until it succeeds, at most wait_s.
wait_for() {
	local what=$1 deadline=$((SECONDS + wait_s))
	shift
	until "$@"; do
		((SECONDS < deadline)) || { echo "osd.sh: $what: not after ${wait_s}s" >&2; exit 1; }
		sleep 0.2
	done
}

case $what in
stop)
	alive || { echo "osd.sh: no OSD running in $dir" >&2; exit 0; }
	# Tells watchdog.sh that no write is expected until start.
	touch "$dir/osd.stopped"
	kill -TERM "$(<"$dir/osd.pid")"
	gone() { ! alive; }
	wait_for "the OSD to exit" gone
	;;
start)
	alive && { rm -f "$dir/osd.stopped"; echo "osd.sh: the OSD in $dir runs already" >&2; exit 0; }
	setsid ceph-osd --conf "$conf" -i 0 -f </dev/null >>"$dir/log/osd.out" 2>&1 &
	echo $! >"$dir/osd.pid"
	disown $!
	# Until the background shell has exec'ed ceph-osd, the PID is not yet
	# an OSD's: alive fails, and the probe is simply retried.
	probe() {
		alive || return 1
		timeout 10 rados --conf "$conf" -p "$pool" put "casfs-osd-probe-$$" "$conf" >/dev/null 2>&1 &&
			timeout 10 rados --conf "$conf" -p "$pool" rm "casfs-osd-probe-$$" >/dev/null 2>&1
	}
	wait_for "a write to pool $pool (see $dir/log/osd.out)" probe
	rm -f "$dir/osd.stopped"
	;;
*)
	echo "usage: osd.sh stop|start [DIR]" >&2
	exit 2
	;;
esac
