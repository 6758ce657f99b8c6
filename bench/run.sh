#!/usr/bin/env bash
# Builds sockio, the load generator and every peer server, then runs the whole comparison and
# writes BENCHMARKS.md at the repository root. Extra arguments go to `sockio-bench compare`
# (e.g. `bench/run.sh --server sockio-tokio --server node --storm 2000`).
# Needs: Rust (cargo), Node.js with npm, Python 3 with venv. Registries used: crates.io, npm, PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

echo "== building sockio-conformance and sockio-bench (release)"
cargo build --release -p sockio-conformance -p sockio-bench

echo "== building the socketioxide peer (release)"
(cd bench/peers/socketioxide && cargo build --release --locked)

echo "== installing the Node.js peer (socket.io from npm)"
(cd bench/peers/node && npm ci --no-audit --no-fund --silent)

echo "== installing the Python peer (python-socketio, uvicorn from PyPI)"
(
    cd bench/peers/python
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    .venv/bin/pip install --quiet -r requirements.txt
)

# 15,000 client sockets in one process: ask for the fd limit the comparison needs.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

echo "== running the comparison"
exec "$root/target/release/sockio-bench" compare --root "$root" "$@"
