"""Counts of one callgrind dump, for bench/instructions_per_*.sh.

    callgrind_count.py DUMP FUNCTION UNIT [NAME=FUNCTION ...]

Prints the instructions of the dump, how many times FUNCTION was called (the sum over its
callers: one call per UNIT counted), the instructions per UNIT, and for each NAME=FUNCTION the
instructions under FUNCTION (inclusive) per UNIT. FUNCTION is a whole symbol as callgrind
records it, e.g. `sockio_core::socketio::decoder::Decoder::decode_text`.
"""
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
    print(line + (f"  ({', '.join(parts)})" if parts else ""))


main()
