# Sourced by the bench scripts that watch a server the harness runs (bench/thread_stack_pages.sh,
# bench/thread_stack_depth.sh, bench/storm_cpu.sh, bench/syscalls_per_ack.sh, and, for the helpers
# below it, bench/callgrind_window.sh): starts `sockio-bench compare` of the repository at ROOT in the
# background and finds the first server process it starts.
#
#   harness_server ROOT COMPARE-ARGS...
#
# sets `harness` (the harness's pid), `pid` (the server's), `out` (a directory holding the
# harness's `log` and `report.md`) and `server_pattern` (the server's process pattern, for the
# server `harness_kind` names: sockio-tokio unless the caller set it); everything is stopped and
# removed when the calling script exits. The caller sets `script` (its name, for errors).
harness_server() {
    local root="$1"
    shift
    ulimit -n 20000 2>/dev/null || true
    local bench_bin
    bench_bin="$(readlink -f "$root/target/release/sockio-bench")"
    server_pattern="$(harness_server_pattern "${harness_kind:-sockio-tokio}" "$root")" ||
        harness_fail "no server named ${harness_kind}"
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
    [ -n "$pid" ] || harness_fail "the server did not start"
}

# The directory of the binaries the harness of the repository at ROOT runs: it starts its servers
# (and the floor) from beside its own executable, symbolic links resolved.
harness_binaries() {
    dirname "$(readlink -f "$1/target/release/sockio-bench")"
}

# The process pattern of the server SERVER (sockio-tokio, sockio-smol, sockio-threads or
# raw-ws-floor) that the harness of the repository at ROOT runs; fails for any other name.
#
#   harness_server_pattern SERVER ROOT
harness_server_pattern() {
    local bin
    bin="$(harness_binaries "$2")"
    case "$1" in
        sockio-tokio | sockio-smol | sockio-threads) echo "$bin/sockio-conformance serve" ;;
        raw-ws-floor) echo "$bin/sockio-bench floor" ;;
        *) return 1 ;;
    esac
}

# Finds the server of the harness's first round of rate scenarios and waits until it holds CLIENTS
# more sockets than the fewest it held since: sets `pid`.
#
#   harness_round_server PATTERN LOG CLIENTS HARNESS
#
# PATTERN matches the server's process (`pgrep -f`), LOG is the harness's output and HARNESS its
# pid (a harness that ended is reported instead of waited for). The server of
# the large phase may still be exiting (under callgrind, writing its dump) when the round begins:
# the servers seen before the round's header was printed (the harness starts the round's server
# after printing it) are left out. The round's earlier scenarios connect clients of their own
# first, so the count waited for is CLIENTS above the fewest sockets seen, not above the count when
# the server was found (which could hold those other clients, and then never be reached).
harness_round_server() {
    local pattern="$1" log="$2" clients="$3" harness_pid="$4" _ snapshot earlier="" base held
    # The large phase before the round can take minutes under callgrind.
    for _ in $(seq 1 6000); do
        sleep 0.1
        snapshot="$(pgrep -f "$pattern" || true)"
        grep -q "^== round 1/1" "$log" && break
        kill -0 "$harness_pid" 2>/dev/null ||
            harness_fail "the harness ended before its round (log: $(tail -3 "$log" 2>&1))"
        earlier="$snapshot"
    done
    grep -q "^== round 1/1" "$log" || harness_fail "the round did not begin (log: $(tail -3 "$log"))"
    pid=""
    for _ in $(seq 1 300); do
        sleep 0.1
        pid="$(pgrep -f "$pattern" | grep -vxF -f <(printf '%s\n' none $earlier) | tail -1 || true)"
        [ -n "$pid" ] && break
    done
    [ -n "$pid" ] || harness_fail "the round's server did not start (log: $(tail -3 "$log"))"
    base="$(find "/proc/$pid/fd" -mindepth 1 2>/dev/null | wc -l)"
    for _ in $(seq 1 900); do
        held="$(find "/proc/$pid/fd" -mindepth 1 2>/dev/null | wc -l)"
        [ "$held" -lt "$base" ] && base="$held"
        [ "$held" -ge $((base + clients)) ] && return 0
        sleep 0.1
    done
    harness_fail "the round's server never held $clients more sockets (log: $(tail -3 "$log"))"
}

# Starts sockio-threads of the repository at ROOT under the harness with CLIENTS idle WebSocket
# clients (their storm, then 15 s idle) and returns once the server runs a thread for each, plus
# 3 s to settle: sets what `harness_server` sets.
#
#   harness_idle_threads ROOT CLIENTS
harness_idle_threads() {
    local root="$1" clients="$2" _
    harness_server "$root" --server sockio-threads --storm "$clients" --idle-secs 15 --echo 10 \
        --echo-secs 1 --broadcast 10 --deliveries 10 --polling 10 --polling-secs 1 --capacity 0 \
        --rounds 1
    for _ in $(seq 1 900); do
        [ "$(ls "/proc/$pid/task" 2>/dev/null | wc -l)" -ge "$clients" ] && break
        sleep 0.1
    done
    sleep 3
}

harness_fail() {
    echo "${script:-harness_server}: $*" >&2
    exit 1
}

harness_server_cleanup() {
    [ -n "${harness:-}" ] && kill "$harness" 2>/dev/null || true
    pkill -f "$server_pattern" 2>/dev/null || true
    rm -rf "$out"
}
