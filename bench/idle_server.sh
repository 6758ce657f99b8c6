#!/usr/bin/env bash
# An idle server's wake-ups and its first answer to a new connection: starts `sockio-conformance
# serve --runtime RUNTIME --profile bench` of the repository at ROOT (default: this one; build it
# first with `cargo build --release -p sockio-conformance`), then, with nothing connected, sums
# the voluntary context switches of all its threads over 5 s (/proc/<pid>/task/*/status), and
# times 100 new connections in a row, 37 ms apart, from connect to the first bytes of the answer
# to a handshake GET (bench/first_answer.py). Written for the threads runtime's accept loop
# (bench/ANALYSIS.md, "Threads runtime: a blocking accept").
# Usage: bench/idle_server.sh [ROOT] [RUNTIME]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
runtime="${2:-threads}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$root/target/release/sockio-conformance" serve --runtime "$runtime" --profile bench --port "$port" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
  sleep 0.1
done
sleep 1
switches() { cat /proc/$pid/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
before=$(switches)
sleep 5
after=$(switches)
echo "$runtime, idle: $((after - before)) voluntary context switches in 5 s ($(ls /proc/$pid/task | wc -l) threads)"
python3 "$(dirname "$0")/first_answer.py" "$port" 100
