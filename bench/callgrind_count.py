"""Counts of one callgrind dump, for bench/instructions_per_*.sh.

    callgrind_count.py DUMP FUNCTION UNIT [NAME=FUNCTION ...]

Prints the instructions of the dump (and, when callgrind simulated the caches, the misses of each
cache per UNIT), how many times FUNCTION was called (the sum over its
callers: one call per UNIT counted), the instructions and the calls of glibc's `malloc` per
UNIT, for each NAME=FUNCTION the instructions under FUNCTION (inclusive) per UNIT, and, when the
dump has per-instruction counts (`--dump-instr=yes`), the atomic read-modify-write instructions
executed per UNIT (`lock`-prefixed ones and `xchg` with memory, found by disassembling each
object with objdump) and the iterations of `rep` string instructions per UNIT, which callgrind
counts one by one (one per byte for `rep stosb`), with the instructions per UNIT without them.
With ATOMICS_BY_FUNCTION=N in the environment it also lists the N functions that execute the
most atomic operations per UNIT (code of a stripped library, glibc's, shows under the nearest
symbol objdump finds, not its own function's).
FUNCTION is a whole symbol as callgrind records it, e.g.
`sockio_core::socketio::decoder::Decoder::decode_text`.
"""
import collections
import os
import re
import subprocess
import sys


def annotate(dump):
    return subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--show=Ir", dump],
        capture_output=True, text=True, check=True,
    ).stdout


def number(text):
    return int(text.replace(",", ""))


def calls_of(dump, function):
    """How many times `function` was called: the `calls=` lines under a `cfn=` naming it.

    Read from the dump itself: a regular expression over callgrind_annotate's caller tree took
    minutes on large dumps (it backtracks over every caller line)."""
    names, callee, count = {}, None, 0
    with open(dump, errors="replace") as lines:
        for line in lines:
            if line.startswith(("fn=", "cfn=")):
                found = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if found:
                    if found.group(2):
                        names[found.group(1)] = found.group(2)
                    if line.startswith("cfn="):
                        callee = names.get(found.group(1))
            elif line.startswith("calls=") and callee == function:
                count += int(line.split()[0][len("calls="):])
    return count


def instruction_counts(dump):
    """Executions of each instruction, by object file and address, from a dump written with
    `--dump-instr=yes` (None without). Names are compressed (`(id) name` the first time, `(id)`
    after); positions are absolute, relative (`+n`, `-n`) or repeated (`*`); the line after a
    `calls=` line is the call's inclusive cost, not the calling instruction's own."""
    objects, counts = {}, collections.defaultdict(collections.Counter)
    obj, address, after_call, per_instruction = None, 0, False, False
    # A cost line is its positions, then one count per event of `events:` (trailing zeros may
    # be left out): with the cache simulation, `Ir` is not the last.
    positions, events = ["line"], ["Ir"]
    with open(dump, errors="replace") as lines:
        for line in lines:
            if line.startswith("positions:"):
                positions = line.split()[1:]
                per_instruction = "instr" in positions
            elif line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("ob=", "cob=")):
                found = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if found and found.group(2):
                    objects[found.group(1)] = found.group(2)
                if found and line.startswith("ob="):
                    obj = objects.get(found.group(1))
            elif line.startswith("calls="):
                after_call = True
            elif line[:1] in "0123456789+-*":
                fields = line.split()
                position = fields[0]
                if position.startswith("0x"):
                    address = int(position, 16)
                elif position[0] in "+-":
                    address += int(position)
                elif position != "*":
                    address = int(position)
                if after_call:
                    after_call = False
                elif obj:
                    column = len(positions) + events.index("Ir")
                    if column < len(fields):
                        counts[obj][address] += int(fields[column])
    return counts if per_instruction else None


def classified_instructions(dump, by_function=None):
    """(atomic, repeated) executions in the dump, or None without per-instruction counts.

    by_function, a Counter, receives the atomic executions of each function (by the symbol
    objdump names the code with, demangled).

    atomic: read-modify-write instructions (`lock`-prefixed, and `xchg` with memory).
    repeated: iterations of `rep`-prefixed string instructions (`rep stos`, `rep movs`: glibc's
    memset and memcpy of a few KiB and more). Callgrind counts each iteration, one per byte for
    `rep stosb`, as an instruction, where the CPU runs the whole string in a few dozen cycles: a
    count that includes them overstates the work of code that zeroes or copies large buffers."""
    counts = instruction_counts(dump)
    if counts is None:
        return None
    atomic = repeated = 0
    for obj, executed in counts.items():
        if not obj.startswith("/"):
            continue
        disassembly = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", obj],
                                     capture_output=True, text=True).stdout
        function = None
        for found in re.finditer(
                r"^[0-9a-f]+ <(.*)>:$|^\s*([0-9a-f]+):\s+(lock |xchg\s.*\(|rep[a-z]* (?:stos|movs))",
                disassembly, re.M):
            if found.group(1) is not None:
                function = found.group(1)
                continue
            times = executed.get(int(found.group(2), 16), 0)
            if found.group(3).startswith("rep"):
                repeated += times
            else:
                atomic += times
                if by_function is not None and times:
                    by_function[function or f"{obj} (before its first symbol)"] += times
    return atomic, repeated


def cache_misses(dump):
    """The dump's totals of the cache simulation's miss counts (`--cache-sim=yes`): I1mr (L1
    instruction read misses), D1mr, D1mw (L1 data read and write misses), ILmr, DLmr, DLmw (the
    same at the last level), by name; empty without the simulation."""
    names = totals = None
    with open(dump, errors="replace") as lines:
        for line in lines:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("totals:", "summary:")):
                totals = [int(field) for field in line.split()[1:]]
    if not names or not totals:
        return {}
    return {name: total for name, total in zip(names, totals) if name.endswith(("mr", "mw"))}


def main():
    dump, function, unit, *shares = sys.argv[1:]
    flat = annotate(dump)
    total = number(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", flat).group(1))
    count = calls_of(dump, function)
    if not count:
        sys.exit(f"no call of {function} while counting")
    line = f"instructions {total:,}  {unit} count {count:,}  per {unit} {total / count:,.0f}"
    parts = []
    for share in shares:
        name, share_function = share.split("=", 1)
        found = re.search(r"^\s*([\d,]+) \([\d.]+%\)\s+\S*" + re.escape(share_function) + r" ",
                          flat, re.M)
        parts.append(f"{name} {(number(found.group(1)) if found else 0) / count:,.0f}")
    line += f"  malloc calls per {unit} {calls_of(dump, 'malloc') / count:.1f}"
    by_function = collections.Counter()
    classified = classified_instructions(dump, by_function)
    if classified is not None:
        atomic, repeated = classified
        line += (f"  atomic operations per {unit} {atomic / count:.1f}"
                 f"  rep-string iterations per {unit} {repeated / count:,.0f}"
                 f" (per {unit} without them {(total - repeated) / count:,.0f})")
    print(line + (f"  ({', '.join(parts)})" if parts else ""))
    misses = cache_misses(dump)
    if misses:
        print(f"cache misses per {unit}: "
              + ", ".join(f"{name} {total / count:.1f}" for name, total in misses.items()))
    # ATOMICS_BY_FUNCTION=N: the N functions with the most atomic operations per unit.
    top = int(os.environ.get("ATOMICS_BY_FUNCTION", "0") or 0)
    if top and classified is None:
        print("ATOMICS_BY_FUNCTION: the dump has no per-instruction counts (--dump-instr=yes)")
    for function, times in by_function.most_common(top):
        print(f"  {times / count:6.2f} atomic operations per {unit} in {function[:160]}")


main()
