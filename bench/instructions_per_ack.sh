#!/usr/bin/env bash
# User-space instructions the server executes per acknowledgement in the echo closed loop (100
# clients unless CLIENTS says otherwise), counted by callgrind: unlike time, the count does not move with what else the machine is
# doing, so small changes to the echo path can be compared build against build (bench/ANALYSIS.md).
# Runs `sockio-bench compare` against sockio-tokio of the repository at ROOT (default: this one;
# build it first with `cargo build --release -p sockio-conformance -p sockio-bench`) with the
# server under `valgrind --tool=callgrind`, zeroes the counts once the closed loop runs, dumps them
# 3 s later, and divides by the echo events decoded in between (one `Decoder::decode_text` each),
# or, with SERVER raw-ws-floor, runs the floor instead and divides by its answers (one
# `floor::answer` each). It also prints the atomic read-modify-write instructions per event, and
# the count without the iterations of `rep` string instructions (callgrind counts one per byte).
# With CACHE_SIM=1 in the environment callgrind also simulates this machine's caches per core
# (`lscpu`: 32 KiB L1 for instructions, 32 KiB L1 for data, 1 MiB L2, given explicitly because
# valgrind takes the shared 32 MiB L3 as its last level) and the misses per event are printed
# too: what a time profile cannot show here, where the virtual machine has no hardware counters.
# Usage: bench/instructions_per_ack.sh [ROOT] [SERVER] [CLIENTS]
set -euo pipefail
script=instructions_per_ack.sh
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
callgrind_server="${2:-sockio-tokio}"
clients="${3:-100}"
case "$clients" in
    '' | *[!0-9]*) echo "$script: CLIENTS is a number of clients" >&2; exit 1 ;;
esac
case "$callgrind_server" in
    sockio-tokio | sockio-smol | sockio-threads) counted="sockio_core::socketio::decoder::Decoder::decode_text" ;;
    raw-ws-floor) counted="sockio_bench::floor::answer" ;;
    *) echo "$script: SERVER is sockio-tokio, sockio-smol, sockio-threads or raw-ws-floor" >&2; exit 1 ;;
esac
if [ "${CACHE_SIM:-0}" = 1 ]; then
    export CALLGRIND_OPTIONS="--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,8,64"
fi
. "$(dirname "$0")/callgrind_window.sh"
# Counting starts once the echo clients are connected and past the closed loop's 0.7 s of start
# and warm-up, with margin for callgrind (more with more clients, which callgrind serves slowly);
# the closed loop runs 8 s, so the 3 s counted end inside it at either size.
settle=2
[ "$clients" -gt 100 ] && settle=3
callgrind_window "$root" "$clients" "$settle" 3 --storm 10 --echo "$clients" --echo-secs 8 --broadcast 10 \
    --deliveries 10 --polling 10 --polling-secs 1 --capacity 0 --rounds 1
python3 "$(dirname "$0")/callgrind_count.py" "$dump" "$counted" "echo event"
