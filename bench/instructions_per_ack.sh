#!/usr/bin/env bash
# User-space instructions the server executes per acknowledgement in the 100-client echo closed
# loop, counted by callgrind: unlike time, the count does not move with what else the machine is
# doing, so small changes to the echo path can be compared build against build (bench/ANALYSIS.md).
# Runs `sockio-bench compare` against sockio-tokio of the repository at ROOT (default: this one;
# build it first with `cargo build --release -p sockio-conformance -p sockio-bench`) with the
# server under `valgrind --tool=callgrind`, zeroes the counts once the closed loop runs, dumps them
# 3 s later, and divides by the echo events decoded in between (one `Decoder::decode_text` each),
# or, with SERVER raw-ws-floor, runs the floor instead and divides by its answers (one
# `floor::answer` each). It also prints the atomic read-modify-write instructions per event, and
# the count without the iterations of `rep` string instructions (callgrind counts one per byte).
# Usage: bench/instructions_per_ack.sh [ROOT] [SERVER]
set -euo pipefail
script=instructions_per_ack.sh
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
callgrind_server="${2:-sockio-tokio}"
case "$callgrind_server" in
    sockio-tokio | sockio-smol | sockio-threads) counted="sockio_core::socketio::decoder::Decoder::decode_text" ;;
    raw-ws-floor) counted="sockio_bench::floor::answer" ;;
    *) echo "$script: SERVER is sockio-tokio, sockio-smol, sockio-threads or raw-ws-floor" >&2; exit 1 ;;
esac
. "$(dirname "$0")/callgrind_window.sh"
# Counting starts once the 100 echo clients are connected and past the closed loop's 0.7 s of
# start and warm-up, with margin for callgrind.
callgrind_window "$root" 100 2 3 --storm 10 --echo 100 --echo-secs 6 --broadcast 10 \
    --deliveries 10 --polling 10 --polling-secs 1 --capacity 0 --rounds 1
python3 "$(dirname "$0")/callgrind_count.py" "$dump" "$counted" "echo event"
