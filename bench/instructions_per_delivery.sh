#!/usr/bin/env bash
# User-space instructions the server executes per broadcast delivery, 1,000 receivers, counted by
# callgrind (steady whatever else the machine does, unlike time; bench/ANALYSIS.md). Runs
# `sockio-bench compare` against sockio-tokio of the repository at ROOT (default: this one; build
# it first with `cargo build --release -p sockio-conformance -p sockio-bench`) with the server
# under `valgrind --tool=callgrind`, zeroes the counts 4 s after the receivers are connected (the
# sender is broadcasting by then), dumps them 4 s later and divides by the deliveries in between
# (one `Session::send_frames` call each). Prints the total, the sender's share (everything under
# `Server::deliver_local`: selecting the recipients and queueing the frame on each connection)
# and the writers' share (`ws_pump::write_now`: framing and writing; this one depends on how many
# frames a write batches, so it moves by about 10% between runs of the same build).
# Usage: bench/instructions_per_delivery.sh [ROOT]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
ulimit -n 20000 2>/dev/null || true
out="$(mktemp -d)"
harness=""
cleanup() {
    [ -n "$harness" ] && kill "$harness" 2>/dev/null || true
    pkill -f "callgrind.*$root/target/release/sockio-conformance serve" 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT
fail() {
    echo "instructions_per_delivery.sh: $*" >&2
    exit 1
}
SOCKIO_BENCH_WRAP="valgrind --tool=callgrind --callgrind-out-file=$out/cg.%p" \
    "$root/target/release/sockio-bench" compare --root "$root" --server sockio-tokio --storm 10 \
    --echo 1 --echo-secs 1 --broadcast 1000 --deliveries 3000000 --polling 10 --polling-secs 1 \
    --capacity 0 --rounds 1 --broadcast-wait 40 --out "$out/report.md" >"$out/log" 2>&1 &
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
base="$(ls "/proc/$pid/fd" | wc -l)"
for _ in $(seq 1 900); do
    sleep 0.1
    [ "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" -ge $((base + 1000)) ] && break
done
sleep 4
callgrind_control -z "$pid" >/dev/null 2>&1 || fail "callgrind_control -z $pid failed"
sleep 4
callgrind_control -d "$pid" >/dev/null 2>&1 || fail "callgrind_control -d $pid failed"
sleep 1
dump="$(ls "$out/cg.$pid".* 2>/dev/null | head -1)"
[ -n "$dump" ] || fail "callgrind wrote no dump"
python3 - "$dump" <<'PY'
import re, subprocess, sys
dump = sys.argv[1]
flat = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                      capture_output=True, text=True, check=True).stdout
def inclusive(name):
    m = re.search(r"^\s*([\d,]+) \([\d.]+%\)\s+\S*" + re.escape(name) + r" ", flat, re.M)
    return int(m.group(1).replace(",", "")) if m else 0
total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", flat).group(1).replace(",", ""))
tree = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--tree=caller", dump],
                      capture_output=True, text=True, check=True).stdout
block = re.search(r"((?:[^\n]*<[^\n]*\n)+)[^\n]*\*\s+\?\?\?:sockio_core::engineio::session::Session::send_frames ", tree)
if not block:
    sys.exit("no broadcast delivery while counting")
deliveries = sum(int(n.replace(",", "")) for n in re.findall(r"\(([\d,]+)x\)", block.group(1)))
sender = inclusive("sockio_server::server::Server<Rt>::deliver_local")
writers = inclusive("sockio_server::ws_pump::write_now")
print(f"instructions {total:,}  deliveries {deliveries:,}  per delivery {total / deliveries:,.0f}"
      f"  (sender {sender / deliveries:,.0f}, writers {writers / deliveries:,.0f})")
PY
