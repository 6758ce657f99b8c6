#!/usr/bin/env bash
# User-space instructions the server executes per broadcast delivery, 1,000 receivers, counted by
# callgrind (steady whatever else the machine does, unlike time; bench/ANALYSIS.md). Runs
# `sockio-bench compare` against sockio-tokio of the repository at ROOT (default: this one; build
# it first with `cargo build --release -p sockio-conformance -p sockio-bench`) with the server
# under `valgrind --tool=callgrind`, zeroes the counts 4 s after the receivers are connected (the
# sender is broadcasting by then), dumps them 4 s later and divides by the deliveries in between
# (one `Session::send_frames` call each). Prints the total, the sender's share (everything under
# `Server::deliver_here`: selecting the recipients and queueing the frame on each connection)
# and the writers' share (`ws_pump::write_now`: framing and writing; this one depends on how many
# frames a write batches, so it moves by about 10% between runs of the same build).
# Usage: bench/instructions_per_delivery.sh [ROOT]
set -euo pipefail
script=instructions_per_delivery.sh
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
. "$(dirname "$0")/callgrind_window.sh"
# Counting starts 4 s after the 1,000 receivers are connected: the sender is broadcasting by then.
callgrind_window "$root" 1000 4 4 --storm 10 --echo 1 --echo-secs 1 --broadcast 1000 \
    --deliveries 3000000 --polling 10 --polling-secs 1 --capacity 0 --rounds 1 --broadcast-wait 40
python3 "$(dirname "$0")/callgrind_count.py" "$dump" "sockio_core::engineio::session::Session::send_frames" "delivery" "sender=sockio_server::server::Server<Rt>::deliver_here::{{closure}}" "writers=sockio_server::ws_pump::write_now"
