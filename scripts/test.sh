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

echo "== Cargo.lock is up to date"
# Every cargo command below would otherwise quietly resolve the dependencies again and test other
# versions than the committed ones.
cargo metadata --locked --format-version 1 >/dev/null

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
# Listed first: a failing `cargo tree` inside the `if` would pass the check without one.
root_deps="$(cargo tree -p sockio -e normal --prefix none)"
if grep -E '^(rustls|futures-rustls|ring) ' <<<"$root_deps"; then
    echo "the root crate's default build must not compile a broker client or TLS" >&2
    exit 1
fi
# A broker URL without its feature is refused by name (the test's other half runs with them).
cargo test -p sockio-core --no-default-features --lib a_broker_url_needs_its_feature

echo "== cargo doc (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p sockio --all-features

echo "== cargo test"
# The tests that depend on the root crate's runtime feature run on smol and threads too (the
# default run is tokio): the chat demo checked with its smoke test, smol's hyper embedding,
# shutdown of the Socket.IO and of the raw Engine.IO server, the order of a socket's handlers and
# callbacks. smol's executor runs on two threads for all of them, as the README tells users to set
# it: on its default one, tasks never run side by side, and the order tests could not fail.
SMOL_TESTS=(--test chat_example --test smol_hyper --test api_shutdown --test api_engine_shutdown
    --test handler_order)
THREADS_TESTS=(--test chat_example)
# Everything is built first, so that the suites run below beside the others share the cores with
# tests only, never with the compiler.
cargo test --workspace --exclude sockio --all-targets --no-run
cargo test -p sockio --all-targets --no-run
cargo test -p sockio --no-default-features --features smol "${SMOL_TESTS[@]}" --no-run
cargo test -p sockio --no-default-features --features threads "${THREADS_TESTS[@]}" --no-run
cargo build -p sockio-conformance

# These conformance suites spend their time waiting (paced readers, acknowledgement timeouts,
# clients' lifetimes): 311 s of wall time for 52 s of CPU time (each measured with
# `/usr/bin/time cargo test -p sockio-conformance --test NAME`), so they run beside the other
# tests, into a log shown when they are done. Their checks count the heap of their own process
# or wait with timeouts of seconds, which a busy neighbour does not trip.
WAITING_SUITES=(cluster_churn_memory large_emit_bursts churn_memory reference_diff)
# Every other test target of the workspace but the root crate's, by name. Both runs select the
# same packages as the build above, so that Cargo unifies the same features and builds nothing.
# Listed in a command substitution, not a process substitution, so that `set -e` sees a failure
# (which would otherwise leave the list empty and run none of these suites).
other_suites="$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
waiting = set(sys.argv[1:])
for package in json.load(sys.stdin)["packages"]:
    if package["name"] == "sockio":
        continue
    for target in package["targets"]:
        if "test" in target["kind"] and target["name"] not in waiting:
            print(target["name"])
' "${WAITING_SUITES[@]}" | sort -u)"
if [[ -z "$other_suites" ]]; then
    echo "no test target found by cargo metadata" >&2
    exit 1
fi
mapfile -t OTHER_SUITES <<<"$other_suites"
as_test_args() {
    for suite in "$@"; do
        printf -- '--test\n%s\n' "$suite"
    done
}
mapfile -t waiting_args < <(as_test_args "${WAITING_SUITES[@]}")
mapfile -t other_args < <(as_test_args "${OTHER_SUITES[@]}")
waiting_log="$(mktemp)"
# In a process group of its own (setsid, from util-linux, which Debian always has): cargo, the
# test binaries it starts and what they start are ended together if this script ends first
# (bash runs the EXIT trap on INT, TERM and HUP too). Without it, killing cargo alone leaves its
# running test binary behind, and `pkill -P` is not on every machine (procps). `-w`: were this
# shell ever to run it as a process group's leader, setsid would fork, and `wait` still gets
# the suites' exit status.
setsid -w cargo test --workspace --exclude sockio "${waiting_args[@]}" >"$waiting_log" 2>&1 &
waiting_pid=$!
# A step below that fails ends this script: what the suites beside it printed so far is shown
# then, not lost with the log.
trap 'kill -TERM -- -"$waiting_pid" 2>/dev/null || true
      echo "== output of the suites run beside (cut short)"; cat "$waiting_log" 2>/dev/null || true
      rm -f "$waiting_log"' EXIT

cargo test --workspace --exclude sockio --lib --bins --examples --benches "${other_args[@]}"
# The official-client suite runs once, as the conformance matrix below. tests/official_clients.rs
# (which plain `cargo test` runs) is the same library code over the same servers, so it is
# skipped here rather than run twice.
cargo test -p sockio --all-targets -- --skip official_clients_on_every_runtime
cargo test --workspace --doc
SMOL_THREADS=2 cargo test -p sockio --no-default-features --features smol "${SMOL_TESTS[@]}"
cargo test -p sockio --no-default-features --features threads "${THREADS_TESTS[@]}"

echo "== the conformance suites run beside the tests above (${WAITING_SUITES[*]})"
waiting_status=0
wait "$waiting_pid" || waiting_status=$?
# Reaped: from here on its pid may be another process's, which the trap must not signal.
trap - EXIT
cat "$waiting_log"
rm -f "$waiting_log"
if [[ "$waiting_status" -ne 0 ]]; then
    echo "the conformance suites run beside the others failed (exit status $waiting_status)" >&2
    exit 1
fi

echo "== conformance matrix (every official client x runtime x transport x scenario)"
cargo run -p sockio-conformance -- matrix

echo "== benchmark harness smoke run"
# Seconds long, small N, against sockio (tokio) and the raw WebSocket floor only (no node/python
# peers needed). Debug build: it reuses the sockio-conformance binary the matrix above built.
cargo build -p sockio-conformance
cargo run -p sockio-bench -- smoke

echo "== forbidden dependencies of sockio-core"
core_deps="$(cargo tree -p sockio-core -e normal --prefix none)"
if grep -E '^(tokio|smol|async-io|async-std|futures-io|mio|hyper|tungstenite|async-tungstenite|getrandom|rand) ' <<<"$core_deps"; then
    echo "sockio-core must stay sans-IO: the crates above are forbidden" >&2
    exit 1
fi
echo "sockio-core dependency check: ok"
