#!/usr/bin/env bash
# Prints what a cluster made by start-cluster.sh says about itself, for a
# test run that found it not answering: the daemons, the cluster's status
# and flags, the OSD's own view (its state, ops in flight and blocked, the
# slowest recent ops, its fullness), and the tails of the daemons' logs.
# Every command is bounded, so it finishes even against a wedged cluster.
#
#   integration/ceph/diagnose.sh [DIR]
set -uo pipefail

dir=${1:-${CASFS_CEPH_DIR:-${TMPDIR:-/tmp}/casfs-ceph}}
[[ -e $dir/.casfs-ceph-cluster ]] || { echo "diagnose: $dir is not a cluster made by start-cluster.sh" >&2; exit 1; }
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
asok=$dir/run/ceph-osd.0.asok

section() { echo "----- $*"; }
bounded() { timeout 20 "$@" 2>&1 || echo "(no answer within 20 s, or failed: $*)"; }

section "cluster in $dir at $(date -u +%FT%TZ)"
for name in mon osd; do
	pid=$(cat "$dir/$name.pid" 2>/dev/null)
	if [[ -n $pid ]] && [[ -d /proc/$pid ]]; then
		echo "$name: pid $pid, $(awk '{print "state " $3}' "/proc/$pid/stat"), $(grep VmRSS "/proc/$pid/status")"
	else
		echo "$name: not running (pid ${pid:-none})"
	fi
done
[[ -e $dir/osd.stopped ]] && echo "osd.sh stopped the OSD on purpose"
section "load, memory, disk"
cat /proc/loadavg
free -m
df -h "$dir" /tmp 2>/dev/null
section "ceph status"
bounded ceph --conf "$conf" --connect-timeout 10 status
bounded ceph --conf "$conf" --connect-timeout 10 health detail
bounded ceph --conf "$conf" --connect-timeout 10 osd dump
if [[ -S $asok ]]; then
	for cmd in status dump_ops_in_flight dump_blocked_ops dump_historic_slow_ops; do
		section "osd.0 $cmd"
		bounded ceph --admin-daemon "$asok" "$cmd"
	done
	section "osd.0 fullness"
	bounded ceph --admin-daemon "$asok" perf dump osd | grep -E '"(stat_bytes|stat_bytes_used|stat_bytes_avail|op_wip|numpg)"'
fi
for f in "$dir"/log/*.log "$dir"/log/*.out; do
	[[ -s $f ]] || continue
	section "tail of $f"
	tail -n 60 "$f"
done
