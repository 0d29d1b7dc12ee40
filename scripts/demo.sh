#!/usr/bin/env bash
# Quick start 1: install what is missing, build certpilot, and run the demo in a
# local lab (Pebble, pebble-challtestsrv, Knot and Unbound on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target certpilot >/dev/null
exec /usr/bin/python3 tests/lab/demo.py --certpilot build/certpilot "$@"
