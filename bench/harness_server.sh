# Sourced by bench/thread_stack_pages.sh and bench/storm_cpu.sh (and, for `harness_binaries`, by
# bench/callgrind_window.sh): starts `sockio-bench compare` of the repository at ROOT in the
# background and finds the first server process it starts.
#
#   harness_server ROOT COMPARE-ARGS...
#
# sets `harness` (the harness's pid), `pid` (the server's), `out` (a directory holding the
# harness's `log` and `report.md`) and `server_pattern`; everything is stopped and removed when
# the calling script exits. The caller sets `script` (its name, for errors).
harness_server() {
    local root="$1"
    shift
    ulimit -n 20000 2>/dev/null || true
    local bench_bin
    bench_bin="$(readlink -f "$root/target/release/sockio-bench")"
    server_pattern="$(harness_binaries "$root")/sockio-conformance serve"
    out="$(mktemp -d)"
    harness=""
    trap harness_server_cleanup EXIT
    "$bench_bin" compare --root "$root" "$@" --out "$out/report.md" >"$out/log" 2>&1 &
    harness=$!
    pid=""
    local _
    for _ in $(seq 1 600); do
        pid="$(pgrep -f "$server_pattern" | head -1)" && break
        sleep 0.05
    done
    [ -n "$pid" ] || { echo "${script:-harness_server}: the server did not start" >&2; exit 1; }
}

# The directory of the binaries the harness of the repository at ROOT runs: it starts its servers
# (and the floor) from beside its own executable, symbolic links resolved.
harness_binaries() {
    dirname "$(readlink -f "$1/target/release/sockio-bench")"
}

harness_server_cleanup() {
    [ -n "${harness:-}" ] && kill "$harness" 2>/dev/null || true
    pkill -f "$server_pattern" 2>/dev/null || true
    rm -rf "$out"
}
