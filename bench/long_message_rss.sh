#!/usr/bin/env bash
# What one long message leaves behind in the server: starts `sockio-conformance serve --profile
# bench` with RUNTIME (tokio, smol or threads; default tokio) from the repository at ROOT (default:
# this one; build it first with `cargo build --release -p sockio-conformance`), connects CLIENTS
# WebSocket clients (socket.io-client 4 from testkit/clients, `npm ci` there first; default 1,000),
# reads the server's VmRSS, and then, with DIRECTION to-clients (the default), has one client emit
# `broadcast` with a BYTES-long string (default 262,144) and waits until every client got its
# `bcast`, or, with from-clients, has every client send such a string in an event the server does
# not handle and waits until the server's RSS stops growing; 2 s later it reads VmRSS again: the
# growth per connection is what each connection kept (bench/ANALYSIS.md, "Idle memory after a
# long message").
# Usage: bench/long_message_rss.sh [RUNTIME] [ROOT] [CLIENTS] [BYTES] [DIRECTION]
set -euo pipefail
runtime="${1:-tokio}"
root="$(cd "${2:-$(dirname "$0")/..}" && pwd)"
clients="${3:-1000}"
bytes="${4:-262144}"
direction="${5:-to-clients}"
here="$(cd "$(dirname "$0")" && pwd)"
client_modules="$here/../testkit/clients/node_modules"
if [ ! -d "$client_modules/socket.io-client" ]; then
    echo "long_message_rss.sh: run npm ci in testkit/clients first" >&2
    exit 1
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$root/target/release/sockio-conformance" serve --runtime "$runtime" --profile bench \
    --port "$port" > /dev/null 2>&1 &
server=$!
trap 'kill "$server" 2> /dev/null || true' EXIT
for _ in $(seq 100); do
    if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then break; fi
    sleep 0.1
done
NODE_PATH="$client_modules" node "$here/long_message_rss.js" "$port" "$server" "$clients" "$bytes" "$direction"
