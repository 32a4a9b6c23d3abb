#!/usr/bin/env bash
# `npm test`: both parts of the suite, always. Part 1 (unit, simulation, single-process files) runs
# two files at a time; part 2 (test/system/, real peer processes) runs after it, also two files at
# a time: its files mostly wait on peers and timers, and must pass on a loaded machine anyway. A failure in part 1 does not skip part 2: each part prints node's
# own summary, this script then prints one line per part and exits 1 if either failed.
# (Node 20 does not expand globs in --test arguments, hence find.)
set -u
cd "$(dirname "$0")/.."

node --import tsx --test --test-concurrency=2 --test-reporter=spec $(find test -name '*.test.ts' ! -path 'test/system/*' | sort)
unit=$?
node --import tsx --test --test-concurrency=2 --test-reporter=spec $(find test/system -name '*.test.ts' | sort)
system=$?

verdict() { if [ "$1" -eq 0 ]; then echo "passed"; else echo "FAILED (exit $1)"; fi; }
echo "npm test: part 1 (test/ without test/system): $(verdict $unit)"
echo "npm test: part 2 (test/system): $(verdict $system)"
[ "$unit" -eq 0 ] && [ "$system" -eq 0 ]
