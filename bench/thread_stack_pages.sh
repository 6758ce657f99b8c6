#!/usr/bin/env bash
# Resident stack of the threads runtime's connection threads: runs `sockio-bench compare` against
# sockio-threads of the repository at ROOT (default: this one; build it first with `cargo build
# --release -p sockio-conformance -p sockio-bench`) with CLIENTS idle WebSocket clients (default
# 2000), and while they are connected reads the server's /proc/<pid>/smaps: every mapping of a
# connection stack's size (sockio_threads::CONNECTION_STACK, 1 MiB) and its resident KiB. A
# thread keeps every stack page it ever touched, so this is the deepest its frames went, in pages
# (bench/ANALYSIS.md, "Threads runtime: stack pages"). The pool threads share the stack size;
# they are a handful among CLIENTS.
# Usage: bench/thread_stack_pages.sh [ROOT] [CLIENTS]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
clients="${2:-2000}"
script=thread_stack_pages.sh
. "$(dirname "$0")/harness_server.sh"
harness_idle_threads "$root" "$clients"
python3 - "$pid" <<'PY'
import collections, sys
pid = sys.argv[1]
size = None
resident = collections.Counter()
for line in open(f"/proc/{pid}/smaps", encoding="utf-8"):
    fields = line.split()
    if "-" in fields[0] and ":" not in fields[0]:
        start, end = (int(x, 16) for x in fields[0].split("-"))
        size = (end - start) // 1024
    elif fields[0] == "Rss:" and size is not None and 1020 <= size <= 1028:
        resident[int(fields[1])] += 1
stacks = sum(resident.values())
if stacks == 0:
    sys.exit("thread_stack_pages.sh: no connection stacks found")
mean = sum(k * n for k, n in resident.items()) / stacks
print(f"connection-size stacks: {stacks}, resident KiB mean {mean:.2f}")
for kib, n in sorted(resident.items()):
    print(f"  {kib:>5} KiB: {n}")
PY
