#!/usr/bin/env bash
# How deep the threads runtime's connection threads went into their stacks, and in what code:
# runs `sockio-bench compare` against sockio-threads of the repository at ROOT (default: this one;
# build it first with `cargo build --release -p sockio-conformance -p sockio-bench`) with CLIENTS
# idle WebSocket clients (default 300), and while they are connected reads the top 16 KiB of every
# connection-sized (1 MiB) stack mapping through /proc/<pid>/mem. A page is zero when the kernel
# maps it and frames leave their bytes behind, so the lowest non-zero byte is the deepest the
# thread's frames went; the words of the deepest stack that point into the server's code are the
# return addresses (and stale code pointers) left there, printed with their depth and symbol
# (addr2line). The top of the mapping holds glibc's thread control block and the static TLS
# (bench/ANALYSIS.md, "Threads runtime: stack pages").
# Usage: bench/thread_stack_depth.sh [ROOT] [CLIENTS]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
clients="${2:-300}"
script=thread_stack_depth.sh
harness_kind=sockio-threads
. "$(dirname "$0")/harness_server.sh"
harness_idle_threads "$root" "$clients"
exe="$(readlink -f "/proc/$pid/exe")"
# Code addresses in the file differ from those in the binary's (PIE) address space by its
# executable segment's p_vaddr - p_offset.
shift_hex="$(readelf -lW "$exe" | awk '$1 == "LOAD" && / E / { print $3, $2; exit }')"
python3 - "$pid" "$exe" $shift_hex <<'PY' | while read -r depth addr; do
import collections, sys
pid, exe = sys.argv[1], sys.argv[2]
shift = int(sys.argv[3], 16) - int(sys.argv[4], 16)
WINDOW = 16 * 1024
texts, stacks = [], []
for line in open(f"/proc/{pid}/maps", encoding="utf-8"):
    fields = line.split()
    start, end = (int(x, 16) for x in fields[0].split("-"))
    if len(fields) > 5 and fields[5] == exe and "x" in fields[1]:
        texts.append((start, end, int(fields[2], 16)))
    if 1020 * 1024 <= end - start <= 1028 * 1024 and "rw" in fields[1]:
        stacks.append((start, end))
mem = open(f"/proc/{pid}/mem", "rb", 0)
depths = collections.Counter()
deepest = (0, b"")
for _, end in stacks:
    mem.seek(end - WINDOW)
    data = mem.read(WINDOW)
    first = next((i for i, b in enumerate(data) if b), None)
    if first is None:
        continue
    depth = WINDOW - first
    depths[(depth + 255) // 256 * 256] += 1
    if depth > deepest[0]:
        deepest = (depth, data)
if not depths:
    sys.exit("thread_stack_depth.sh: no connection stacks found")
print(f"stacks: {sum(depths.values())}", file=sys.stderr)
for depth, count in sorted(depths.items()):
    print(f"  deepest byte within {depth} bytes of the top: {count}", file=sys.stderr)
print(f"code pointers left in the deepest stack ({deepest[0]} bytes), by depth:", file=sys.stderr)
data = deepest[1]
for k in range(0, WINDOW, 8):
    word = int.from_bytes(data[k:k + 8], "little")
    for start, end, offset in texts:
        if start <= word < end:
            print(WINDOW - k, hex(word - start + offset + shift))
PY
    printf '  %6s  %s\n' "$depth" "$(addr2line -f -C -e "$exe" "$addr" | head -1 | cut -c1-110)"
done
