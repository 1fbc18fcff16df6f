#!/usr/bin/env bash
# Starts a throwaway single-node Ceph cluster for casfs's RADOS tests: one
# monitor and one memstore (RAM-backed) OSD, cephx on, listening on
# 127.0.0.1 only, everything (config, keys, data, logs, PID files) in one
# directory. No mgr: it is not needed for I/O or pool creation.
#
#   integration/ceph/start-cluster.sh [DIR]
#
# DIR defaults to $CASFS_CEPH_DIR, else ${TMPDIR:-/tmp}/casfs-ceph. It must be
# missing, empty, or a cluster this script made. Installs Ceph from Debian's
# packages first if it is missing.
#
# On success it writes DIR/env and prints the same lines on stdout:
#
#   export CEPH_CONF=DIR/ceph.conf
#   export CASFS_CEPH_POOL=casfs-test
#   export CASFS_CEPH_USER=admin
#   export CASFS_CEPH_DIR=DIR
#
# so that `. DIR/env` sets up a shell for `go test -tags ceph ./chunkstore/rados/`.
# (`eval "$(start-cluster.sh)"` works too, but hides a failed start from
# set -e: run the script, then source the file.) Progress goes to stderr.
#
# Idempotent: if DIR holds a cluster whose daemons are alive and which takes a
# write, it is reused as it is; a dead one is torn down and made afresh.
# The OSD keeps everything in RAM, at most CASFS_CEPH_MEMSTORE_BYTES (8 GiB
# by default: RAM is taken only as objects are written, and an OSD past 95%
# of it is full, which pauses writes until space is freed and looks to
# clients like a timeout). Every wait is bounded (CASFS_CEPH_WAIT seconds, 60
# by default); on a timeout it prints the tails of the daemons' logs, stops
# what it started and fails. Stop the cluster with
# integration/ceph/stop-cluster.sh DIR.
#
# Each ceph.conf setting below says why it is there; they were found by
# running such clusters on the project's 2-core Debian machines.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${CASFS_CEPH_DIR:-${TMPDIR:-/tmp}/casfs-ceph}}
wait_s=${CASFS_CEPH_WAIT:-60}
pool=casfs-test
marker=.casfs-ceph-cluster # marks DIR as made by this script; stop-cluster.sh checks it

log() { echo "start-cluster: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# --- Ceph itself -------------------------------------------------------------

"$here/install.sh"

# --- helpers -----------------------------------------------------------------

[[ -d $dir ]] && dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
ceph_() { timeout 30 ceph --conf "$conf" --connect-timeout 10 "$@"; }

# alive PIDFILE: the daemon recorded in PIDFILE is running: a live (not
# zombie) process started with this cluster's ceph.conf, not one that
# reused its PID.
alive() {
	local pid stat
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ ${stat##*\) } != Z* ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--conf $conf "
}

# probe: a real write and read back on the test pool, the only readiness
# test that means what the tests need (health says HEALTH_WARN without a mgr).
probe() {
	local obj=casfs-probe-$$
	timeout 15 rados --conf "$conf" -p "$pool" put "$obj" "$conf" >/dev/null 2>&1 &&
		timeout 15 rados --conf "$conf" -p "$pool" stat "$obj" >/dev/null 2>&1 &&
		timeout 15 rados --conf "$conf" -p "$pool" rm "$obj" >/dev/null 2>&1
}

print_env() {
	cat "$dir/env"
}

# dump_logs: the tails of the daemons' logs, for a start that failed.
dump_logs() {
	local f
	for f in "$dir"/log/*.log "$dir"/log/*.out; do
		[[ -s $f ]] || continue
		echo "----- tail of $f" >&2
		tail -n 25 "$f" >&2
	done
}

started=()
# fail MSG: report, show the logs, stop the daemons this run started (the
# directory stays for inspection; stop-cluster.sh removes it).
fail() {
	log "error: $*"
	dump_logs
	local pidfile pid
	for pidfile in "${started[@]}"; do
		if alive "$pidfile"; then
			pid=$(<"$pidfile")
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	log "left $dir for inspection; remove it with: $here/stop-cluster.sh $dir"
	exit 1
}

# wait_for WHAT CMD...: retry CMD every 0.2 s until it succeeds or wait_s
# seconds pass.
wait_for() {
	local what=$1 deadline=$((SECONDS + wait_s))
	shift
	until "$@"; do
		if ((SECONDS >= deadline)); then
			fail "$what: not ready after ${wait_s} s"
		fi
		sleep 0.2
	done
}

# start NAME PIDFILE CMD...: start a daemon in the foreground mode Ceph calls
# -f, detached from this shell (own session, output to a file, no stdin) so
# that it outlives the script and does not hold a caller's pipe open.
start() {
	local name=$1 pidfile=$2
	shift 2
	setsid "$@" </dev/null >"$dir/log/$name.out" 2>&1 &
	echo $! >"$pidfile"
	disown $!
	started+=("$pidfile")
}

# free_port N: sets port to a TCP port nothing listens on at 127.0.0.1,
# trying N first, so that two clusters (two engineers, or CI beside a
# developer) can coexist. Not in a subshell: it remembers what it handed out.
taken_ports=" "
free_port() {
	local p=$1 tries=0
	while [[ $taken_ports == *" $p "* ]] || (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
		((++tries < 200)) || die "no free TCP port found"
		p=$((20000 + RANDOM % 10000))
	done
	taken_ports+="$p "
	port=$p
}

new_uuid() {
	if command -v uuidgen >/dev/null; then uuidgen; else cat /proc/sys/kernel/random/uuid; fi
}

# --- reuse, or clear, what is in DIR ----------------------------------------

if [[ -e $dir/$marker ]]; then
	if alive "$dir/mon.pid" && alive "$dir/osd.pid" && [[ -s $dir/env ]] && probe; then
		log "cluster in $dir is already running"
		print_env
		exit 0
	fi
	log "cluster in $dir is not running (or does not answer): starting it afresh"
	"$here/stop-cluster.sh" "$dir"
elif [[ -d $dir ]] && [[ -n $(ls -A "$dir") ]]; then
	die "$dir is not empty and was not made by this script; choose another DIR"
fi

# --- make the cluster --------------------------------------------------------

t0=$SECONDS
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
touch "$dir/$marker"
mkdir -p "$dir/log" "$dir/run" "$dir/crash" "$dir/mon.a" "$dir/osd.0"

fsid=$(new_uuid)
free_port 3300
v2=$port
free_port 6789
v1=$port
mon_addr="[v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]"

cat >"$conf" <<EOF
# Throwaway single-node cluster made by casfs's integration/ceph/start-cluster.sh.
[global]
fsid = $fsid
mon host = $mon_addr
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
# 127.0.0.1 only.
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
# Everything in this directory.
run dir = $dir/run
crash dir = $dir/crash
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
# One host, one OSD: pools of size 1 placed per OSD, no autoscaler (no mgr).
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
mon allow pool delete = true
# Busy CI disks would warn, and below 5% free the mon shuts itself down.
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $dir/mon.\$id
keyring = $dir/mon.\$id/keyring
# Start-up in 2-4 s instead of 7.
paxos propose interval = 0.1
paxos min wait = 0.01

[osd]
osd data = $dir/osd.\$id
keyring = $dir/osd.\$id/keyring
# RAM-backed, the fastest store.
osd objectstore = memstore
memstore device bytes = ${CASFS_CEPH_MEMSTORE_BYTES:-8589934592}
# The PG log lives in RAM with memstore; unbounded it grows ~90 MB a test run.
osd min pg log entries = 100
osd max pg log entries = 500
osd pg log dups tracked = 500
# A fast shutdown skips memstore's save: a restarted OSD would have lost
# everything and later requests would hang forever.
osd fast shutdown = false
# Object classes (refcount, cas, cmpomap, lock, ...).
osd class load list = *
osd class default list = *

[client]
keyring = $dir/client.admin.keyring
# Concurrent clients would collide on one socket path.
admin socket =
# Fail instead of hanging forever.
rados osd op timeout = 60
rados mon op timeout = 60
EOF

log "making a cluster in $dir (mon on 127.0.0.1:$v2 and :$v1)"
ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/client.admin.keyring" --gen-key -n client.admin \
	--cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/client.admin.keyring" >/dev/null
monmaptool --create --addv a "$mon_addr" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon --conf "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" \
	>"$dir/log/mon-mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed"

start mon "$dir/mon.pid" ceph-mon --conf "$conf" -i a -f
mon_up() { alive "$dir/mon.pid" || fail "ceph-mon exited"; ceph_ mon stat >/dev/null 2>&1; }
wait_for "monitor" mon_up

osd_uuid=$(new_uuid)
osd_key=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}\n' "$osd_key" >"$dir/osd-secrets.json"
osd_id=$(ceph_ osd new "$osd_uuid" -i "$dir/osd-secrets.json") || fail "ceph osd new failed"
[[ $osd_id == 0 ]] || fail "ceph osd new gave OSD id '$osd_id', expected 0"
ceph-authtool --create-keyring "$dir/osd.0/keyring" --name osd.0 --add-key "$osd_key" >/dev/null
ceph-osd --conf "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1 ||
	fail "ceph-osd --mkfs failed"

start osd "$dir/osd.pid" ceph-osd --conf "$conf" -i 0 -f
osd_up() {
	alive "$dir/osd.pid" || fail "ceph-osd exited"
	[[ $(ceph_ osd stat -f json 2>/dev/null) == *'"num_up_osds":1,'* ]]
}
wait_for "OSD" osd_up

ceph_ osd pool create "$pool" 8 8 >/dev/null 2>&1 || fail "ceph osd pool create $pool failed"
ceph_ osd pool application enable "$pool" rados >/dev/null 2>&1 ||
	fail "ceph osd pool application enable $pool rados failed"
wait_for "a write to pool $pool" probe

cat >"$dir/env" <<EOF
export CEPH_CONF=$conf
export CASFS_CEPH_POOL=$pool
export CASFS_CEPH_USER=admin
export CASFS_CEPH_DIR=$dir
EOF
log "ready in $((SECONDS - t0)) s: mon pid $(<"$dir/mon.pid"), osd pid $(<"$dir/osd.pid"); stop with $here/stop-cluster.sh $dir"
print_env
