"""Counts of one callgrind dump, for bench/instructions_per_*.sh.

    callgrind_count.py DUMP FUNCTION UNIT [NAME=FUNCTION ...]

Prints the instructions of the dump, how many times FUNCTION was called (the sum over its
callers: one call per UNIT counted), the instructions per UNIT, and for each NAME=FUNCTION the
instructions under FUNCTION (inclusive) per UNIT. FUNCTION names are as callgrind_annotate prints
them, e.g. `sockio_core::socketio::decoder::Decoder::decode_text`.
"""
import re
import subprocess
import sys


def annotate(dump, *extra):
    return subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", *extra, dump],
        capture_output=True, text=True, check=True,
    ).stdout


def number(text):
    return int(text.replace(",", ""))


def main():
    dump, function, unit, *shares = sys.argv[1:]
    flat = annotate(dump)
    total = number(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", flat).group(1))
    tree = annotate(dump, "--tree=caller")
    callers = re.search(
        r"((?:[^\n]*<[^\n]*\n)+)[^\n]*\*\s+\S*" + re.escape(function) + r" ", tree)
    if not callers:
        sys.exit(f"no call of {function} while counting")
    count = sum(number(n) for n in re.findall(r"\(([\d,]+)x\)", callers.group(1)))
    line = f"instructions {total:,}  {unit} count {count:,}  per {unit} {total / count:,.0f}"
    parts = []
    for share in shares:
        name, share_function = share.split("=", 1)
        found = re.search(r"^\s*([\d,]+) \([\d.]+%\)\s+\S*" + re.escape(share_function) + r" ",
                          flat, re.M)
        parts.append(f"{name} {(number(found.group(1)) if found else 0) / count:,.0f}")
    print(line + (f"  ({', '.join(parts)})" if parts else ""))


main()
