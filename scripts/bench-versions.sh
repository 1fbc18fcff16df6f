#!/usr/bin/env bash
# shellcheck disable=SC2034 # TOOL_get and TOOL_desc are used through ${!name}
# Versioning benchmark: casfs against restic and borg on the same data, in
# the same run, then casfs alone on large incompressible files.
#
#   scripts/bench-versions.sh            # from the repository root, as root
#
# Part 1. Dataset: version 1 is a real tar (the Go installation, sorted and
# with fixed owners and times so it is byte-identical on every machine with
# the same Go; capped at BENCH_DATASET_MB, default 200 MiB). Versions 2..6
# each apply BENCH_EDITS (20) seeded random edits of 1-4 KiB to the previous
# one: insertions, deletions and overwrites with random bytes. Each tool
# ingests the 6 versions in order, as 6 invocations of its own CLI, from one
# path (a hard link that is re-pointed), and the last version is restored to
# /dev/null after dropping the page cache. Reported per tool: ingest MB/s
# (logical bytes / wall time; version 1, versions 2-6 and all), peak RSS,
# bytes on disk of the repository directory at the end (du -sb; restic's
# and borg's local caches live outside it and are not counted), restore
# MB/s and peak RSS. Every restore is also compared byte for byte (untimed),
# for casfs every one of the 6 versions, and the stores are fsck'd.
#
# Defaults of the tools, used unchanged:
#   casfs   FastCDC 160 KiB/640 KiB/2.5 MiB, BLAKE3, zstd per chunk (the level is
#           chunkstore/encoded.go's zstdLevel)
#   restic  repository format 2, compression "auto" (zstd), ~1 MiB chunks,
#           AES-256 + Poly1305 (restic cannot turn encryption off)
#   borg    `init -e none`, `create` with lz4, buzhash chunks of ~2 MiB
#
# Part 2, casfs alone: put of BENCH_BIG_MB (1024) MiB of new incompressible
# data into a fresh store, put of the same bytes again under another name
# (all chunks deduplicate), cold get to /dev/null; then put and cold get of
# BENCH_HUGE_MB (4096) MiB, for peak RSS at scale.
#
# Environment: BENCH_DIR (parent of the scratch directory, default /var/tmp),
# BENCH_KEEP=1 keeps it, BENCH_RESULTS (default bench-out/results.md, which
# the tables are appended to), BENCH_DATASET_MB, BENCH_EDITS, BENCH_SEED,
# BENCH_BIG_MB, BENCH_HUGE_MB (0 skips that part), BENCH_TOOLS ("casfs restic
# borg"). Needs root for dropping caches (otherwise restores are warm).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
bench_setup

DATASET_MB=${BENCH_DATASET_MB:-200}
NVERSIONS=6
NEDITS=${BENCH_EDITS:-20}
SEED=${BENCH_SEED:-1}
BIG_MB=${BENCH_BIG_MB:-1024}
HUGE_MB=${BENCH_HUGE_MB:-4096}
TOOLS=${BENCH_TOOLS:-casfs restic borg}
RESULTS=${BENCH_RESULTS:-$REPO_ROOT/bench-out/results.md}
mkdir -p "$(dirname "$RESULTS")" "$REPO_ROOT/bench-out" "${BENCH_DIR:-/var/tmp}"
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/casfs-bench-versions.XXXXXX")
LOG=$work/bench.log
cleanup() {
	local rc=$?
	# The log outlives the scratch directory: bench-out/ is git-ignored.
	cp "$LOG" "$REPO_ROOT/bench-out/bench-versions.log" 2>/dev/null || true
	((rc == 0)) || log "failed (exit $rc); log: bench-out/bench-versions.log"
	bench_cleanup_build
	if [[ -n ${BENCH_KEEP:-} ]]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
MACHINE=$(machine_desc "$work")
log "scratch directory $work, log $LOG"

# ---------------------------------------------------------------- dataset
data=$work/data
src=$work/src # the one path every tool backs up: src/data.tar
mkdir -p "$data" "$src"
goroot=$(go env GOROOT)
log "dataset: tar of $goroot (and /usr/share if that is not enough), first $DATASET_MB MiB"
# GNU tar's --sort/--mtime/--owner make the archive independent of the
# directory order and of when Go was unpacked. head closes the pipe at the
# cap, so tar's SIGPIPE is expected. The cut falls inside a member: a real
# tar prefix, which is all the tools see anyway.
{ tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C / -cf - \
	"${goroot#/}" usr/share 2>/dev/null || true; } | head -c $((DATASET_MB << 20)) >"$data/v1.tar"

# The editor: reads version N-1, applies NEDITS edits of 1-4 KiB at
# uniformly random offsets with a seeded generator, writes version N.
cat >"$work/edit.py" <<'EOF'
import random, sys
src, dst, seed, nedits = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
data = bytearray(open(src, "rb").read())
for _ in range(nedits):
    kind = rng.choice(("insert", "delete", "overwrite"))
    n = rng.randint(1024, 4096)
    off = rng.randrange(0, len(data) - n)
    if kind == "insert":
        data[off:off] = rng.randbytes(n)
    elif kind == "delete":
        del data[off:off + n]
    else:
        data[off:off + n] = rng.randbytes(n)
with open(dst, "wb") as f:
    f.write(data)
EOF
py=/usr/bin/python3
[[ -x $py ]] || py=python3
for ((v = 2; v <= NVERSIONS; v++)); do
	"$py" "$work/edit.py" "$data/v$((v - 1)).tar" "$data/v$v.tar" $((SEED * 1000 + v)) "$NEDITS"
done
logical=0
for ((v = 1; v <= NVERSIONS; v++)); do
	logical=$((logical + $(fsize "$data/v$v.tar")))
done
v1_bytes=$(fsize "$data/v1.tar")
last=$data/v$NVERSIONS.tar
last_bytes=$(fsize "$last")
log "dataset: $NVERSIONS versions, $(mib "$logical") MiB logical; sha256 of v1 and v$NVERSIONS:"
(cd "$data" && sha256sum v1.tar "v$NVERSIONS.tar") | tee -a "$LOG" >&2

# ---------------------------------------------------------------- tools
# Each tool has: TOOL_init, TOOL_put V (ingest src/data.tar as version V),
# TOOL_get (an array: the command writing the last version to stdout; an
# array, not a function, because /usr/bin/time runs it) and TOOL_desc; its
# repository is $work/TOOL.
export RESTIC_PASSWORD=casfs-bench RESTIC_REPOSITORY=$work/restic RESTIC_CACHE_DIR=$work/restic-cache
export BORG_BASE_DIR=$work/borg-home BORG_REPO=$work/borg
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

casfs_init() {
	measure "$LOG" "$CASFS" init "$work/casfs"
	# "created casfs store at DIR (fastcdc 256.0 KiB/1.0 MiB/4.0 MiB chunks, blake3-256, zstd)"
	casfs_desc=$(sed -n 's/^created casfs store at .* (\(.*\))$/\1/p' "$LOG" | tail -n 1)
}
casfs_put() { measure "$LOG" "$CASFS" put "$work/casfs" data.tar "$src/data.tar"; }
casfs_get=("$CASFS" get "$work/casfs" data.tar)

restic_init() { measure "$LOG" restic init; }
restic_get=(restic dump latest "$src/data.tar")
restic_desc="$(restic version | awk '{print $1, $2}'), repo v2, compression auto, AES"

borg_init() { measure "$LOG" borg init -e none; }
borg_put() { measure "$LOG" env -C "$src" borg create "::v$1" data.tar; }
borg_get=(borg extract --stdout "::v$NVERSIONS" data.tar)
borg_desc="$(borg --version), -e none, lz4, 2 MiB avg"

# restic 0.15+ can skip the scan before a backup (one file: nothing to
# gain from a progress estimate); 0.14 cannot.
if restic backup --help 2>/dev/null | grep -q -- --no-scan; then
	restic_put() { measure "$LOG" restic backup --no-scan --tag "v$1" "$src/data.tar"; }
else
	restic_put() { measure "$LOG" restic backup --tag "v$1" "$src/data.tar"; }
fi

declare -A R # results: R[tool,key]
for tool in $TOOLS; do
	log "== $tool: ingest $NVERSIONS versions"
	"${tool}_init"
	total=0 rss=0 first=0
	for ((v = 1; v <= NVERSIONS; v++)); do
		ln -f "$data/v$v.tar" "$src/data.tar"
		"${tool}_put" "$v"
		total=$(awk -v a="$total" -v b="$SECS" 'BEGIN { print a + b }')
		((v == 1)) && first=$SECS
		((RSS_KB > rss)) && rss=$RSS_KB
		log "   v$v: ${SECS}s, peak RSS $((RSS_KB / 1024)) MiB"
	done
	rm -f "$src/data.tar"
	R[$tool.in1]=$(mbps "$v1_bytes" "$first")
	R[$tool.inrest]=$(mbps $((logical - v1_bytes)) "$(awk -v a="$total" -v b="$first" 'BEGIN { print a - b }')")
	R[$tool.inall]=$(mbps "$logical" "$total")
	R[$tool.inrss]=$((rss / 1024))
	repo=$work/$tool
	R[$tool.stored]=$(du -sb "$repo" | cut -f1)
	log "== $tool: restore v$NVERSIONS (cold)"
	get="${tool}_get[@]"
	drop_caches
	measure_out /dev/null "$LOG" "${!get}"
	R[$tool.out]=$(mbps "$last_bytes" "$SECS")
	R[$tool.outrss]=$((RSS_KB / 1024))
	if "${!get}" 2>>"$LOG" | cmp -s - "$last"; then
		R[$tool.ok]=identical
	else
		R[$tool.ok]="**DIFFERS**"
		log "ERROR: $tool restored v$NVERSIONS differs from the original"
	fi
done

# casfs: every version, not just the last, must come back exactly, and
# fsck must pass.
if [[ " $TOOLS " == *" casfs "* ]]; then
	log "== casfs: verify all versions, fsck"
	mapfile -t ids < <("$CASFS" versions "$work/casfs" data.tar | awk 'NR > 1 { print $1 }')
	((${#ids[@]} == NVERSIONS)) || {
		R[casfs.ok]="**${#ids[@]} versions listed**"
		log "ERROR: casfs lists ${#ids[@]} versions, want $NVERSIONS"
	}
	for ((v = 1; v <= ${#ids[@]}; v++)); do
		if ! "$CASFS" get "$work/casfs" data.tar --version "${ids[v - 1]}" 2>>"$LOG" | cmp -s - "$data/v$v.tar"; then
			R[casfs.ok]="**v$v DIFFERS**"
			log "ERROR: casfs version $v (${ids[v - 1]}) differs"
		fi
	done
	"$CASFS" stats "$work/casfs" >>"$LOG" 2>&1
	"$CASFS" fsck "$work/casfs" >>"$LOG" 2>&1 || {
		R[casfs.ok]="**fsck failed**"
		log "ERROR: casfs fsck failed"
	}
	[[ ${R[casfs.ok]} == identical ]] && R[casfs.ok]="all $NVERSIONS identical, fsck ok"
fi

table1=$(
	echo "Dataset: $NVERSIONS versions of a $(mib "$v1_bytes") MiB tar ($goroot), $NEDITS edits of 1-4 KiB per version; $(mib "$logical") MiB logical in all."
	echo
	echo "| tool | settings | ingest v1 MB/s | ingest v2-$NVERSIONS MB/s | ingest all MB/s | peak RSS ingest MiB | repo on disk MiB (÷ v1) | restore v$NVERSIONS MB/s (cold) | peak RSS restore MiB | restored data |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
	for tool in $TOOLS; do
		d=${tool}_desc
		echo "| $tool | ${!d} | ${R[$tool.in1]} | ${R[$tool.inrest]} | ${R[$tool.inall]} | ${R[$tool.inrss]} | $(mib "${R[$tool.stored]}") ($(ratio "${R[$tool.stored]}" "$v1_bytes")) | ${R[$tool.out]} | ${R[$tool.outrss]} | ${R[$tool.ok]} |"
	done
)
rm -rf "$data" "$src" "$work/restic" "$work/borg" "$work/restic-cache" "$work/borg-home"

# ---------------------------------------------------------------- casfs alone
table2=""
if ((BIG_MB > 0 || HUGE_MB > 0)); then
	store=$work/casfs-big
	rm -rf "$work/casfs"
	"$CASFS" init "$store" >>"$LOG"
	rows=()
	if ((BIG_MB > 0)); then
		big=$work/big.bin
		log "== casfs alone: $BIG_MB MiB of random data"
		randfile "$big" $((BIG_MB << 20)) casfs-bench-big
		bytes=$(fsize "$big")
		measure "$LOG" "$CASFS" put "$store" big/a "$big"
		rows+=("| put, new incompressible data | $BIG_MB MiB | $(mbps "$bytes" "$SECS") | $((RSS_KB / 1024)) |")
		measure "$LOG" "$CASFS" put "$store" big/b "$big"
		rows+=("| put, same bytes again (all chunks dedup) | $BIG_MB MiB | $(mbps "$bytes" "$SECS") | $((RSS_KB / 1024)) |")
		drop_caches
		measure_out /dev/null "$LOG" "$CASFS" get "$store" big/a
		rows+=("| get to /dev/null, cold | $BIG_MB MiB | $(mbps "$bytes" "$SECS") | $((RSS_KB / 1024)) |")
		measure_out /dev/null "$LOG" "$CASFS" get "$store" big/a
		rows+=("| get to /dev/null, store in page cache | $BIG_MB MiB | $(mbps "$bytes" "$SECS") | $((RSS_KB / 1024)) |")
		"$CASFS" get "$store" big/b 2>>"$LOG" | cmp -s - "$big" || {
			rows+=("| **get big/b DIFFERS from the input** | | | |")
			log "ERROR: big/b differs"
		}
		rm -f "$big"
	fi
	if ((HUGE_MB > 0)); then
		huge=$work/huge.bin
		log "== casfs alone: $HUGE_MB MiB of random data"
		randfile "$huge" $((HUGE_MB << 20)) casfs-bench-huge
		bytes=$(fsize "$huge")
		measure "$LOG" "$CASFS" put "$store" huge "$huge"
		rows+=("| put, new incompressible data | $HUGE_MB MiB | $(mbps "$bytes" "$SECS") | $((RSS_KB / 1024)) |")
		drop_caches
		measure_out /dev/null "$LOG" "$CASFS" get "$store" huge
		rows+=("| get to /dev/null, cold | $HUGE_MB MiB | $(mbps "$bytes" "$SECS") | $((RSS_KB / 1024)) |")
		"$CASFS" get "$store" huge 2>>"$LOG" | cmp -s - "$huge" || {
			rows+=("| **get huge DIFFERS from the input** | | | |")
			log "ERROR: huge differs"
		}
		rm -f "$huge"
	fi
	"$CASFS" stats "$store" >>"$LOG" 2>&1
	if "$CASFS" fsck "$store" >>"$LOG" 2>&1; then fsck=ok; else fsck="**FAILED**"; fi
	table2=$(
		echo "casfs alone (fresh store; fsck afterwards: $fsck):"
		echo
		echo "| test | size | MB/s | peak RSS MiB |"
		echo "|---|---:|---:|---:|"
		printf '%s\n' "${rows[@]}"
	)
fi

report=$(
	echo "## bench-versions $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo
	echo "$MACHINE"
	echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "$table1"
	echo
	echo "$table2"
	echo
)
echo "$report"
echo "$report" >>"$RESULTS"
log "appended to $RESULTS"
