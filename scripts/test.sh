#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (unit, integration, doc) and the
# benchmarks compiled in test mode so they cannot rot. Installs nothing it cannot find.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== the root crate with each runtime feature alone, and with all of them"
for features in "--no-default-features --features smol" "--no-default-features --features threads" "--all-features"; do
    # shellcheck disable=SC2086 # the features are separate words on purpose
    cargo clippy -p sockio --all-targets $features -- -D warnings
done

echo "== the broker clients only with their features (redis, amqp)"
# The library alone: dev-dependencies would turn the runtime crates' default features (both
# brokers) back on. No broker, each broker alone, on the async server and on threads.
for features in "" "--no-default-features --features threads" "--no-default-features --features smol,threads,redis" "--no-default-features --features tokio,threads,amqp"; do
    # shellcheck disable=SC2086 # the features are separate words on purpose
    cargo clippy -p sockio --lib $features -- -D warnings
done
if cargo tree -p sockio -e normal --prefix none | grep -E '^(rustls|futures-rustls|ring) '; then
    echo "the root crate's default build must not compile a broker client or TLS" >&2
    exit 1
fi
# A broker URL without its feature is refused by name (the test's other half runs with them).
cargo test -p sockio-core --no-default-features --lib a_broker_url_needs_its_feature

echo "== cargo doc (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p sockio --all-features

echo "== cargo test"
# The official-client suite runs once, as the conformance matrix below. tests/official_clients.rs
# (which plain `cargo test` runs) is the same library code over the same servers, so it is
# skipped here rather than run twice.
cargo test --workspace --exclude sockio --all-targets
cargo test -p sockio --all-targets -- --skip official_clients_on_every_runtime
cargo test --workspace --doc
# The tests that depend on the root crate's runtime feature, on smol and threads (the default run
# above is tokio): the chat demo checked with its smoke test, smol's hyper embedding, shutdown
# of the Socket.IO and of the raw Engine.IO server.
cargo test -p sockio --no-default-features --features smol --test chat_example --test smol_hyper --test api_shutdown --test api_engine_shutdown
cargo test -p sockio --no-default-features --features threads --test chat_example

echo "== conformance matrix (every official client x runtime x transport x scenario)"
cargo run -p sockio-conformance -- matrix

echo "== benchmark harness smoke run"
# Seconds long, small N, against sockio (tokio) and the raw WebSocket floor only (no node/python
# peers needed). Debug build: it reuses the sockio-conformance binary the matrix above built.
cargo build -p sockio-conformance
cargo run -p sockio-bench -- smoke

echo "== forbidden dependencies of sockio-core"
if cargo tree -p sockio-core -e normal --prefix none | grep -E '^(tokio|smol|async-io|async-std|futures-io|mio|hyper|tungstenite|async-tungstenite|getrandom|rand) ' ; then
    echo "sockio-core must stay sans-IO: the crates above are forbidden" >&2
    exit 1
fi
echo "sockio-core dependency check: ok"
