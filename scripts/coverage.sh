#!/usr/bin/env bash
# Line coverage of the whole test suite (but the official-client matrix), for coverage audits:
# which code no test runs. Builds every test with `-C instrument-coverage` on the nightly
# toolchain (its `llvm-tools` component: `rustup component add llvm-tools --toolchain nightly`)
# into target/coverage, runs the tests, and writes under target/coverage/report:
#   summary.txt    llvm-cov's per-file table (core, server, runtimes, net)
#   uncovered.txt  per file, the lines no test ran, in runs
# Servers the conformance tests start as subprocesses (`sockio-conformance serve`) are killed,
# so they write no counts: what only the hostile, websocket_edges, profiles and conformance
# cluster suites run shows as uncovered. Usage: scripts/coverage.sh (about 13 min on 2 cores).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
out="$root/target/coverage/report"
export CARGO_TARGET_DIR="$root/target/coverage"
export RUSTFLAGS="-C instrument-coverage"
sysroot="$(rustc +nightly --print sysroot)"
bin="$(ls -d "$sysroot"/lib/rustlib/*/bin | head -1)"
[ -x "$bin/llvm-cov" ] || { echo "coverage.sh: no llvm-cov in $bin; rustup component add llvm-tools --toolchain nightly" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out/profiles"
export LLVM_PROFILE_FILE="$out/profiles/%p-%m.profraw"
cargo +nightly build -p sockio-conformance
cargo +nightly test --no-fail-fast --workspace --exclude sockio --exclude sockio-bench --all-targets > "$out/tests.log" 2>&1
cargo +nightly test --no-fail-fast -p sockio --all-targets -- --skip official_clients_on_every_runtime >> "$out/tests.log" 2>&1
grep -E "^test result" "$out/tests.log" | awk '{p+=$4; f+=$6} END {print "test passes", p, "failures", f}'
objects=()
while read -r executable; do
    objects+=(--object "$executable")
done < <( (cargo +nightly test --workspace --exclude sockio --exclude sockio-bench --all-targets --no-run --message-format=json
    cargo +nightly test -p sockio --all-targets --no-run --message-format=json
    cargo +nightly build -p sockio-conformance --message-format=json) 2>/dev/null |
    python3 -c '
import json, sys
seen = set()
for line in sys.stdin:
    message = json.loads(line)
    executable = message.get("executable")
    if message.get("reason") == "compiler-artifact" and executable and executable not in seen:
        seen.add(executable)
        print(executable)')
"$bin/llvm-profdata" merge -sparse "$out"/profiles/*.profraw -o "$out/tests.profdata"
ignore='(\.cargo|rustc|/tests/|/benches/|/library/|testkit/|conformance/|fuzz/|bench/|examples/)'
"$bin/llvm-cov" report --instr-profile="$out/tests.profdata" "${objects[@]}" \
    --ignore-filename-regex="$ignore" > "$out/summary.txt"
"$bin/llvm-cov" show --instr-profile="$out/tests.profdata" "${objects[@]}" \
    --ignore-filename-regex="$ignore" --format=text |
    python3 -c '
import re, sys
current, missed = None, {}
for line in sys.stdin:
    if line.startswith("/") and line.rstrip().endswith(":"):
        current = line.strip()[:-1]
        continue
    match = re.match(r"\s*(\d+)\|\s*(\S+)\|(.*)", line)
    if match and current and match.group(2) == "0":
        missed.setdefault(current, set()).add((int(match.group(1)), match.group(3)))
for path, lines in sorted(missed.items(), key=lambda item: -len(item[1])):
    print("==", path, len(lines))
    previous = -2
    for number, source in sorted(lines):
        if number != previous + 1:
            print("  --")
        print(f"  {number}: {source}")
        previous = number' > "$out/uncovered.txt"
tail -1 "$out/summary.txt"
echo "coverage.sh: $out/summary.txt, $out/uncovered.txt"
