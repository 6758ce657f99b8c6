#!/usr/bin/env bash
# Runs rust_socketio (the Rust Socket.IO client, crates.io) against `sockio-conformance serve
# --profile socket-io` on each runtime, over polling, WebSocket and the upgrade. By hand, not in
# CI: the client needs OpenSSL's headers (Debian's libssl-dev) and about 190 more crates.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo build --release -p sockio-conformance
cargo build --release --manifest-path conformance/rust-socketio-check/Cargo.toml
check="${CARGO_TARGET_DIR:-conformance/rust-socketio-check/target}/release/rust-socketio-check"
serve="${CARGO_TARGET_DIR:-target}/release/sockio-conformance"
failed=0
for runtime in tokio smol threads; do
    log="$(mktemp)"
    "$serve" serve --runtime "$runtime" --profile socket-io --port 0 >"$log" 2>&1 &
    server=$!
    port=""
    for _ in $(seq 100); do
        port="$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$log")"
        [ -n "$port" ] && break
        sleep 0.1
    done
    for transport in polling websocket upgrade; do
        printf '%s ' "$runtime"
        "$check" "http://127.0.0.1:$port" "$transport" || failed=1
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -f "$log"
done
exit "$failed"
