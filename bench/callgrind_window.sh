# Sourced by bench/instructions_per_*.sh: runs `sockio-bench compare` with one server under
# callgrind and counts one window of its work.
#
#   callgrind_window ROOT CLIENTS SETTLE SECONDS COMPARE-ARGS...
#
# starts the comparison (COMPARE-ARGS after `--server $callgrind_server`: sockio-tokio unless the
# caller set `callgrind_server` to another sockio runtime or raw-ws-floor) with the server of the
# repository at ROOT under `valgrind --tool=callgrind --dump-instr=yes` (per-instruction counts,
# which bench/callgrind_count.py reads for the atomic operations), waits until the server of its
# round holds CLIENTS more sockets than the fewest it held since (`harness_round_server`, which
# sets `pid`), waits SETTLE more seconds, zeroes the counts, dumps them SECONDS later and sets
# `dump` to the dump's path. CALLGRIND_OPTIONS in the environment are added to valgrind's (the
# cache simulation of bench/instructions_per_ack.sh). The caller sets `script` (its name, for
# errors); everything is stopped and removed when the calling script exits, and every step that
# fails says so.
. "$(dirname "${BASH_SOURCE[0]}")/harness_server.sh"

callgrind_window() {
    local root="$1" clients="$2" settle="$3" seconds="$4"
    shift 4
    ulimit -n 20000 2>/dev/null || true
    callgrind_out="$(mktemp -d)"
    callgrind_harness=""
    : "${callgrind_server:=sockio-tokio}"
    callgrind_pattern="$(harness_server_pattern "$callgrind_server" "$root")" ||
        callgrind_fail "no process pattern for server $callgrind_server"
    trap callgrind_cleanup EXIT
    SOCKIO_BENCH_WRAP="valgrind --tool=callgrind --dump-instr=yes ${CALLGRIND_OPTIONS:-} --callgrind-out-file=$callgrind_out/cg.%p" \
        "$root/target/release/sockio-bench" compare --root "$root" --server "$callgrind_server" "$@" \
        --out "$callgrind_out/report.md" >"$callgrind_out/log" 2>&1 &
    callgrind_harness=$!
    harness_round_server "callgrind.*$callgrind_pattern" "$callgrind_out/log" "$clients" \
        "$callgrind_harness"
    sleep "$settle"
    # callgrind_control exits 0 even when it finds no such process, so its output is checked.
    callgrind_command -z "$pid"
    sleep "$seconds"
    callgrind_command -d "$pid"
    sleep 1
    dump="$(ls "$callgrind_out/cg.$pid".* 2>/dev/null | head -1 || true)"
    [ -n "$dump" ] || callgrind_fail "callgrind wrote no dump"
    # CALLGRIND_KEEP=FILE keeps a copy of the dump for reading further (`callgrind_annotate`).
    if [ -n "${CALLGRIND_KEEP:-}" ]; then
        cp "$dump" "$CALLGRIND_KEEP" || callgrind_fail "cannot keep the dump as $CALLGRIND_KEEP"
    fi
}

# callgrind_control OPTION PID, failing when callgrind_control found no such process (it exits 0
# then too, so its output is read).
callgrind_command() {
    local said
    said="$(callgrind_control "$1" "$2" 2>&1 || true)"
    case "$said" in
        *"not detected"*) callgrind_fail "callgrind_control $1 $2: no such callgrind process (log: $(tail -3 "$callgrind_out/log"))" ;;
    esac
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
