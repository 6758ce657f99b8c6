#!/usr/bin/env bash
# User-space instructions the server executes per acknowledgement in the 100-client echo closed
# loop, counted by callgrind: unlike time, the count does not move with what else the machine is
# doing, so small changes to the echo path can be compared build against build (bench/ANALYSIS.md).
# Runs `sockio-bench compare` against sockio-tokio of the repository at ROOT (default: this one;
# build it first with `cargo build --release -p sockio-conformance -p sockio-bench`) with the
# server under `valgrind --tool=callgrind`, zeroes the counts once the closed loop runs, dumps them
# 3 s later, and divides by the echo events decoded in between (one `Decoder::decode_text` each).
# Usage: bench/instructions_per_ack.sh [ROOT]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
ulimit -n 20000 2>/dev/null || true
out="$(mktemp -d)"
harness=""
cleanup() {
    # The harness kills its servers when it ends normally; on an early exit both are stopped here.
    [ -n "$harness" ] && kill "$harness" 2>/dev/null || true
    pkill -f "callgrind.*$root/target/release/sockio-conformance serve" 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT
fail() {
    echo "instructions_per_ack.sh: $*" >&2
    exit 1
}
SOCKIO_BENCH_WRAP="valgrind --tool=callgrind --callgrind-out-file=$out/cg.%p" \
    "$root/target/release/sockio-bench" compare --root "$root" --server sockio-tokio --storm 10 \
    --echo 100 --echo-secs 6 --broadcast 10 --deliveries 10 --polling 10 --polling-secs 1 \
    --capacity 0 --rounds 1 --out "$out/report.md" >"$out/log" 2>&1 &
harness=$!
for _ in $(seq 1 600); do
    sleep 0.1
    grep -q "round 1/1" "$out/log" && break
done
pid=""
for _ in $(seq 1 300); do
    sleep 0.1
    pid="$(pgrep -f "callgrind.*$root/target/release/sockio-conformance serve" | tail -1)" && break
done
[ -n "$pid" ] || fail "the server under callgrind did not start (log: $(tail -3 "$out/log"))"
# Counting starts once the 100 echo clients are connected (100 more sockets than the idle server
# holds) and past the closed loop's 0.7 s of start and warm-up, with margin for callgrind.
base="$(ls "/proc/$pid/fd" | wc -l)"
for _ in $(seq 1 600); do
    sleep 0.1
    [ "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" -ge $((base + 100)) ] && break
done
sleep 2
callgrind_control -z "$pid" >/dev/null 2>&1 || fail "callgrind_control -z $pid failed"
sleep 3
callgrind_control -d "$pid" >/dev/null 2>&1 || fail "callgrind_control -d $pid failed"
sleep 1
dump="$(ls "$out/cg.$pid".* 2>/dev/null | head -1)"
[ -n "$dump" ] || fail "callgrind wrote no dump"
wait "$harness" || true
harness=""
python3 - "$dump" <<'PY'
import re, subprocess, sys
dump = sys.argv[1]
flat = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                      capture_output=True, text=True, check=True).stdout
total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", flat).group(1).replace(",", ""))
tree = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--tree=caller", dump],
                      capture_output=True, text=True, check=True).stdout
calls = re.search(r"\(([\d,]+)x\)[^\n]*\n[^\n]*\*\s+\?\?\?:sockio_core::socketio::decoder::Decoder::decode_text", tree)
if not calls:
    sys.exit("no echo event was decoded while counting")
events = int(calls.group(1).replace(",", ""))
print(f"instructions {total:,}  echo events {events:,}  instructions per event {total / events:,.0f}")
PY
