#!/usr/bin/env bash
# Quick start 2 (and CI): install what is missing, build with warnings as errors
# under AddressSanitizer + UndefinedBehaviorSanitizer, run every test, then the
# fuzz targets for a bounded time and the style checks.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/install-deps.sh

echo "== build (warnings are errors, ASan+UBSan)"
cmake -S . -B build-test -DCP_WERROR=ON -DCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-test -j"$jobs"

echo "== systemd units"
bash scripts/check-units.sh build-test

echo "== format check"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

echo "== static analysis (cppcheck)"
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
  --suppress=missingIncludeSystem -I . common caa cli store flow

echo "== fuzz (libFuzzer, bounded)"
CC=clang cmake -S . -B build-fuzz -DCP_FUZZ=ON -DCP_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$jobs" >/dev/null
for target in build-fuzz/tests/fuzz/fuzz_*; do
  name=$(basename "$target")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  cp -r "$corpus"/. "$work"/ 2>/dev/null || true
  "$target" -max_total_time="${CP_FUZZ_SECONDS:-30}" -print_final_stats=0 "$work" 2>&1 | tail -n 2
  rm -rf "$work"
done

echo "== tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-test --output-on-failure -j"$jobs"
