#!/usr/bin/env bash
# CPU of the server and of the load generator during a connect storm: runs `sockio-bench compare`
# with SERVER (default sockio-threads) and a 10,000-client storm from the repository at ROOT
# (default: this one; build it first with `cargo build --release -p sockio-conformance -p
# sockio-bench`), samples utime+stime of both processes (every thread, /proc/<pid>/stat) every
# 0.1 s while the storm runs, and prints the cores each used and the storm's time
# (bench/ANALYSIS.md, "Threads runtime: the connect storm"). On a machine whose cores the two
# processes keep busy, the storm's time is their CPU per connection.
# Usage: bench/storm_cpu.sh [SERVER] [ROOT]
set -euo pipefail
server_name="${1:-sockio-threads}"
root="$(cd "${2:-$(dirname "$0")/..}" && pwd)"
script=storm_cpu.sh
. "$(dirname "$0")/harness_server.sh"
harness_server "$root" --server "$server_name" --storm 10000 --idle-secs 1 --echo 10 \
    --echo-secs 1 --broadcast 10 --deliveries 10 --polling 10 --polling-secs 1 --capacity 0 \
    --rounds 1
python3 - "$pid" "$harness" <<'PY'
import sys, time
server, generator = sys.argv[1], sys.argv[2]

def cpu(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100
    except (OSError, IndexError, ValueError):
        return None

# The storm runs from the first tenth of a second the server uses CPU until it stays idle.
samples, idle, busy = [], 0, False
start = time.time()
prev = (cpu(server), cpu(generator), start)
while time.time() - start < 120:
    time.sleep(0.1)
    now = (cpu(server), cpu(generator), time.time())
    if None in now[:2] or None in prev[:2]:
        break
    used = now[0] - prev[0]
    if used > 0.01:
        busy, idle = True, 0
        samples.append((used, now[1] - prev[1], now[2] - prev[2]))
    elif busy:
        idle += 1
        if idle >= 5:
            break
    prev = now
if not samples:
    sys.exit("storm_cpu.sh: no busy interval seen")
wall = sum(s[2] for s in samples)
print(f"busy {wall:.2f} s: server {sum(s[0] for s in samples) / wall:.2f} cores, "
      f"generator {sum(s[1] for s in samples) / wall:.2f} cores")
PY
wait "$harness" || true
harness=""
grep "storm 10000" "$out/log" || true
