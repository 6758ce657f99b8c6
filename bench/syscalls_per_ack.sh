#!/usr/bin/env bash
# System calls and context switches of the server per acknowledgement in the echo closed loop:
# runs `sockio-bench compare` against SERVER (default sockio-tokio; sockio-smol, sockio-threads or
# raw-ws-floor) of the repository at ROOT (default: this one; build it first with `cargo build
# --release -p sockio-conformance -p sockio-bench`) with CLIENTS echo clients (default 100),
# counts with `perf stat -t <every server thread>` over 3 s of the closed loop, and divides by the
# acks of those 3 s at the closed loop's rate (bench/ANALYSIS.md). Failed `recvfrom`s (a read
# that found nothing) are counted apart. The server's user and system time over the same 3 s
# (utime and stime of /proc/PID/stat) split its CPU per ack between its own code and the time
# in the kernel on its threads (the tracepoints' own cost included). Needs perf with the
# syscalls tracepoints.
# Usage: bench/syscalls_per_ack.sh [SERVER] [CLIENTS] [ROOT]
set -euo pipefail
server_name="${1:-sockio-tokio}"
clients="${2:-100}"
root="$(cd "${3:-$(dirname "$0")/..}" && pwd)"
script=syscalls_per_ack.sh
command -v perf >/dev/null || { echo "$script: perf is not installed" >&2; exit 1; }
. "$(dirname "$0")/harness_server.sh"
harness_kind="$server_name"
harness_server_pattern "$server_name" "$root" >/dev/null ||
    harness_fail "SERVER is sockio-tokio, sockio-smol, sockio-threads or raw-ws-floor"
harness_server "$root" --server "$server_name" --storm 10 --idle-secs 1 --echo "$clients" \
    --echo-secs 6 --broadcast 10 --deliveries 10 --polling 10 --polling-secs 1 --capacity 0 \
    --rounds 1
harness_round_server "$server_pattern" "$out/log" "$clients" "$harness"
# The closed loop runs from 0.7 s after the clients connected.
sleep 1.5
threads="$(ls "/proc/$pid/task" | paste -sd,)"
# The server's /proc/PID/stat (utime, stime) is read at the start and the end of perf's 3 s,
# by the command perf times, so perf's own start and end are outside the window.
perf stat -x, -t "$threads" \
    -e task-clock,context-switches \
    -e syscalls:sys_enter_recvfrom -e syscalls:sys_exit_recvfrom --filter 'ret < 0' \
    -e syscalls:sys_enter_sendto,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait \
    -e syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex \
    -o "$out/perf.csv" -- sh -c 'cat "/proc/$1/stat" >"$2/stat.before" && sleep 3 &&
        cat "/proc/$1/stat" >"$2/stat.after"' sh "$pid" "$out"
wait "$harness" || { echo "$script: the harness failed" >&2; tail -3 "$out/log" >&2; exit 1; }
harness=""
python3 - "$out/perf.csv" "$out/log" "$server_name" "$clients" "$out/stat.before" \
    "$out/stat.after" "$(getconf CLK_TCK)" <<'PY'
import re, sys
perf, log, server, clients, before, after, ticks = sys.argv[1:]
def times(path):
    """utime and stime of a /proc/PID/stat (fields 14 and 15; the command, field 2, is in
    parentheses and may hold spaces, so fields are counted from after the last `)`)."""
    fields = open(path, encoding="utf-8").read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])
before, after = times(before), times(after)
counts = {}
for line in open(perf, encoding="utf-8"):
    fields = line.strip().split(",")
    if len(fields) > 2 and fields[0] and not line.startswith("#"):
        try:
            counts[fields[2]] = float(fields[0])
        except ValueError:
            sys.exit(f"syscalls_per_ack.sh: perf could not count {fields[2]}: {fields[0]}")
rate = re.search(rf"echo {clients}: (\d+) acks/s", open(log, encoding="utf-8").read())
if not rate:
    sys.exit("syscalls_per_ack.sh: no echo rate in the harness's log")
acks = int(rate.group(1)) * 3
def spent(field):
    """Microseconds of user (0) or system (1) time per ack over the counted seconds."""
    used = after[field] - before[field]
    return used / int(ticks) * 1e6 / acks
def per(event):
    return counts.get(event, 0) / acks
print(f"{server}, {clients} clients: {int(rate.group(1)):,} acks/s; per ack: "
      f"CPU {counts.get('task-clock', 0) * 1000 / acks:.1f} us "
      f"(user {spent(0):.1f}, system {spent(1):.1f}), "
      f"recvfrom {per('syscalls:sys_enter_recvfrom'):.2f} "
      f"(failed {per('syscalls:sys_exit_recvfrom'):.2f}), "
      f"sendto {per('syscalls:sys_enter_sendto'):.2f}, writev {per('syscalls:sys_enter_writev'):.2f}, "
      f"epoll_wait {per('syscalls:sys_enter_epoll_wait') + per('syscalls:sys_enter_epoll_pwait'):.3f}, "
      f"epoll_ctl {per('syscalls:sys_enter_epoll_ctl'):.2f}, futex {per('syscalls:sys_enter_futex'):.3f}, "
      f"context switches {per('context-switches'):.3f}")
PY
