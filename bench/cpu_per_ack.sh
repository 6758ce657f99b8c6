#!/usr/bin/env bash
# Server CPU per acknowledgement in the 100-client echo closed loop, for A/B comparisons of builds
# (bench/ANALYSIS.md): runs `sockio-bench compare` against sockio-tokio of the repository at ROOT
# (default: this one; build it first with `cargo build --release -p sockio-conformance -p
# sockio-bench`), reads the server's utime+stime from /proc over 4 s of the closed loop, and
# divides by the acks in that time. Usage: bench/cpu_per_ack.sh [ROOT]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
ulimit -n 20000 2>/dev/null || true
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$root/target/release/sockio-bench" compare --root "$root" --server sockio-tokio --storm 100 \
    --deliveries 1 --echo 100 --echo-secs 6 --broadcast 100 --polling 10 --polling-secs 1 \
    --capacity 0 --rounds 1 --out "$log.md" >"$log" 2>&1 &
harness=$!
# The round's echo phase starts on a fresh server right after the large phase.
for _ in $(seq 1 300); do
    sleep 0.1
    grep -q "round 1/1" "$log" && break
done
sleep 1.5
pid="$(pgrep -f "$root/target/release/sockio-conformance serve")"
hz="$(getconf CLK_TCK)"
before="$(awk '{print $14+$15}' "/proc/$pid/stat")"
sleep 4
after="$(awk '{print $14+$15}' "/proc/$pid/stat")"
wait "$harness" || true
rm -f "$log.md"
rate="$(sed -n 's/.*echo 100: \([0-9]*\) acks.*/\1/p' "$log")"
python3 -c "t=($after-$before)/$hz/4; print(f'acks/s {$rate}  server cores {t:.2f}  server us/ack {t/$rate*1e6:.2f}')"
