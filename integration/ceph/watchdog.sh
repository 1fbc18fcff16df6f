#!/usr/bin/env bash
# Watches a cluster made by start-cluster.sh while tests run on it: every
# 10 s a real write and a stat of it. When the pool takes no write for
# about 90 s (and osd.sh has not stopped the OSD on purpose), it prints
# diagnose.sh's report to stderr and ends the test run, process group PGID,
# so that a wedged cluster fails CI in minutes, with its cause on record,
# instead of every remaining test waiting out its timeouts.
#
#   integration/ceph/watchdog.sh DIR PGID
#
# It exits 0 when process PGID (the group's leader) has exited by itself,
# 1 when it ended the tests.
set -uo pipefail

dir=${1:?usage: watchdog.sh DIR PGID}
pgid=${2:?usage: watchdog.sh DIR PGID}
here=$(cd "$(dirname "$0")" && pwd)
conf=$dir/ceph.conf
obj=casfs-watchdog-$$
failures=0

probe() {
	timeout 15 rados --conf "$conf" -p casfs-test put "$obj" "$conf" >/dev/null 2>&1 &&
		timeout 15 rados --conf "$conf" -p casfs-test stat "$obj" >/dev/null 2>&1
}

while kill -0 "$pgid" 2>/dev/null; do
	sleep 10
	if [[ -e $dir/osd.stopped ]] || probe; then
		failures=0
		continue
	fi
	failures=$((failures + 1))
	echo "watchdog: $(date -u +%T) the test pool took no write (failure $failures of 4)" >&2
	if ((failures >= 4)); then
		echo "watchdog: the cluster stopped answering writes; its state:" >&2
		"$here/diagnose.sh" "$dir" >&2
		echo "watchdog: ending the tests (process group $pgid)" >&2
		kill -TERM -- "-$pgid" 2>/dev/null
		sleep 10
		kill -KILL -- "-$pgid" 2>/dev/null
		exit 1
	fi
done
timeout 15 rados --conf "$conf" -p casfs-test rm "$obj" >/dev/null 2>&1
exit 0
