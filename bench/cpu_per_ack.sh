#!/usr/bin/env bash
# Server CPU per acknowledgement in the 100-client echo closed loop, for A/B comparisons of builds
# (bench/ANALYSIS.md): runs `sockio-bench compare` against sockio-tokio of the repository at ROOT
# (default: this one; build it first with `cargo build --release -p sockio-conformance -p
# sockio-bench`) and prints the closed loop's rate and the server's CPU per ack and cores, as the
# harness measured them (utime+stime of the server's process tree from /proc over the closed
# loop, divided by the acks counted in the same seconds). Usage: bench/cpu_per_ack.sh [ROOT]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
ulimit -n 20000 2>/dev/null || true
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
if ! "$root/target/release/sockio-bench" compare --root "$root" --server sockio-tokio --storm 100 \
    --deliveries 1 --echo 100 --echo-secs 6 --broadcast 100 --polling 10 --polling-secs 1 \
    --capacity 0 --rounds 1 --out "$out/report.md" >"$out/log" 2>&1; then
    echo "cpu_per_ack.sh: the harness failed:" >&2
    tail -5 "$out/log" >&2
    exit 1
fi
python3 - "$out/report.md" <<'PY'
import sys
section = None
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("## "):
        section = line.strip()
    elif section == "## Echo: 100 clients, acked `echo` events" and line.startswith("| sockio-tokio |"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # server | acks/s | ratio | open | p50 | p99 | p99.9 | max | p99 ratio | CPU per ack | cores | ...
        print(f"acks/s {cells[1]}  server cores {cells[10]}  server us/ack {cells[9]}")
        sys.exit(0)
sys.exit("cpu_per_ack.sh: no echo row for sockio-tokio in the report")
PY
