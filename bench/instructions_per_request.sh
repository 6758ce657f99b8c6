#!/usr/bin/env bash
# User-space instructions the server executes per polling HTTP request (a round trip of the
# polling scenario is two: the POST of an event and the GET of its ack), 100 polling clients,
# counted by callgrind (bench/ANALYSIS.md). Runs `sockio-bench compare` against SERVER
# (sockio-tokio by default, or sockio-smol or sockio-threads) of the repository at ROOT (default: this one; build it first with `cargo build --release -p
# sockio-conformance -p sockio-bench`) with the server under `valgrind --tool=callgrind`, zeroes the
# counts 4 s after the 100 clients are connected, dumps them 5 s later and divides by the requests
# the Socket.IO connections handled in between (one `Connection::handle_request` each). Prints the
# total, the count and the instructions per request.
# Usage: bench/instructions_per_request.sh [ROOT] [SERVER]
set -euo pipefail
script=instructions_per_request.sh
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
callgrind_server="${2:-sockio-tokio}"
. "$(dirname "$0")/callgrind_window.sh"
callgrind_window "$root" 100 4 5 --storm 10 --echo 1 --echo-secs 1 --broadcast 10 \
    --deliveries 10 --polling 100 --polling-secs 40 --capacity 0 --rounds 1
python3 "$(dirname "$0")/callgrind_count.py" "$dump" "sockio_core::socketio::connection::Connection::handle_request" "request"
