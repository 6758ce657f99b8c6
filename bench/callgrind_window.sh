# Sourced by bench/instructions_per_*.sh: runs `sockio-bench compare` with one server under
# callgrind and counts one window of its work.
#
#   callgrind_window ROOT CLIENTS SETTLE SECONDS COMPARE-ARGS...
#
# starts the comparison (COMPARE-ARGS after `--server $callgrind_server`, sockio-tokio unless the
# caller set `callgrind_server` to raw-ws-floor) with the server of the repository at ROOT under
# `valgrind --tool=callgrind --dump-instr=yes` (per-instruction counts, which
# bench/callgrind_count.py reads for the atomic operations), waits until the server holds CLIENTS
# more sockets than when it started its round, waits SETTLE more seconds, zeroes the counts,
# dumps them SECONDS later and sets `dump` to the dump's path. The caller sets `script` (its name,
# for errors); everything is stopped and removed when the calling script exits.
callgrind_window() {
    local root="$1" clients="$2" settle="$3" seconds="$4"
    shift 4
    ulimit -n 20000 2>/dev/null || true
    callgrind_out="$(mktemp -d)"
    callgrind_harness=""
    # The harness starts the binaries beside the sockio-bench it runs, symlinks resolved.
    local bin
    bin="$(dirname "$(readlink -f "$root/target/release/sockio-bench")")"
    case "${callgrind_server:=sockio-tokio}" in
        sockio-tokio) callgrind_pattern="$bin/sockio-conformance serve" ;;
        raw-ws-floor) callgrind_pattern="$bin/sockio-bench floor" ;;
        *) callgrind_fail "no process pattern for server $callgrind_server" ;;
    esac
    trap callgrind_cleanup EXIT
    SOCKIO_BENCH_WRAP="valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=$callgrind_out/cg.%p" \
        "$root/target/release/sockio-bench" compare --root "$root" --server "$callgrind_server" "$@" \
        --out "$callgrind_out/report.md" >"$callgrind_out/log" 2>&1 &
    callgrind_harness=$!
    local _ pid="" base
    for _ in $(seq 1 600); do
        sleep 0.1
        grep -q "round 1/1" "$callgrind_out/log" && break
    done
    for _ in $(seq 1 300); do
        sleep 0.1
        pid="$(pgrep -f "callgrind.*$callgrind_pattern" | tail -1)" && break
    done
    [ -n "$pid" ] ||
        callgrind_fail "the server under callgrind did not start (log: $(tail -3 "$callgrind_out/log"))"
    base="$(ls "/proc/$pid/fd" | wc -l)"
    for _ in $(seq 1 900); do
        sleep 0.1
        [ "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" -ge $((base + clients)) ] && break
    done
    sleep "$settle"
    callgrind_control -z "$pid" >/dev/null 2>&1 || callgrind_fail "callgrind_control -z $pid failed"
    sleep "$seconds"
    callgrind_control -d "$pid" >/dev/null 2>&1 || callgrind_fail "callgrind_control -d $pid failed"
    sleep 1
    dump="$(ls "$callgrind_out/cg.$pid".* 2>/dev/null | head -1)"
    [ -n "$dump" ] || callgrind_fail "callgrind wrote no dump"
}

callgrind_cleanup() {
    # The harness kills its servers when it ends normally; on an early exit both are stopped here.
    [ -n "${callgrind_harness:-}" ] && kill "$callgrind_harness" 2>/dev/null || true
    pkill -f "callgrind.*$callgrind_pattern" 2>/dev/null || true
    # valgrind writes its last dump as the server exits: wait for that before removing the files.
    local _
    for _ in $(seq 1 100); do
        pgrep -f "callgrind.*$callgrind_pattern" >/dev/null ||
            break
        sleep 0.1
    done
    rm -rf "$callgrind_out" 2>/dev/null || true
}

callgrind_fail() {
    echo "${script:-callgrind_window}: $*" >&2
    exit 1
}
