#!/usr/bin/env bash
# Check the systemd units as `cmake --install` lays them out: install BUILD_DIR
# into a scratch DESTDIR, make sure the units land in a directory systemd reads
# and that ExecStart= names the installed binary, then run
# `systemd-analyze verify` on them.  Needs no running systemd (CI is a container)
# and installs nothing into /.
#
# verify exits 0 on most mistakes (an unknown key, a value it cannot parse is
# "ignoring"), so any line it prints fails the check.  It also insists that
# ExecStart='s program exists; the copies checked point it into the DESTDIR.
#
# Use: scripts/check-units.sh [BUILD_DIR]   (default build-test)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-test}

fail() { echo "check-units: $*" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage/root" cmake --install "$build" >/dev/null

service=$(find "$stage/root" -name certpilot-renew.service -type f)
[ -n "$service" ] || fail "cmake --install put no certpilot-renew.service under DESTDIR"
unit_dir=$(dirname "$service")
timer=$unit_dir/certpilot-renew.timer
[ -f "$timer" ] || fail "certpilot-renew.timer is not next to the service in ${unit_dir#"$stage/root"}"

# Without a running systemd, unit-paths lists the directories it would read.
systemd-analyze --system unit-paths | grep -qx -- "${unit_dir#"$stage/root"}" ||
  fail "units installed in ${unit_dir#"$stage/root"}, which systemd does not read (see CP_SYSTEMD_UNIT_DIR)"

[ "$(grep -c '^ExecStart=' "$service")" -eq 1 ] || fail "certpilot-renew.service needs exactly one ExecStart= line"
exec_line=$(grep '^ExecStart=' "$service")
program=${exec_line#ExecStart=}
program=${program%% *}
case $program in /*) ;; *) fail "ExecStart= does not name an absolute path: $exec_line" ;; esac
[ -x "$stage/root$program" ] || fail "ExecStart= names $program, which cmake --install did not install"

# The timer's interval is FLOW_TIMER_HOURS of flow/flow.h, which `list` warns from.
hours=$(sed -n 's/^#define FLOW_TIMER_HOURS[[:space:]]*\([0-9]*\)$/\1/p' flow/flow.h)
[ -n "$hours" ] || fail "no FLOW_TIMER_HOURS in flow/flow.h"
grep -qx "OnCalendar=\*-\*-\* 00/$hours:00:00" "$timer" ||
  fail "certpilot-renew.timer does not run every $hours hours (FLOW_TIMER_HOURS in flow/flow.h)"

mkdir "$stage/units"
sed "s|^ExecStart=$program|ExecStart=$stage/root$program|" "$service" >"$stage/units/certpilot-renew.service"
cp "$timer" "$stage/units/"
# Log to the terminal even when stderr is the journal; no man(1) in CI.
status=0
out=$(SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=info SYSTEMD_LOG_COLOR=0 \
  systemd-analyze verify --man=no \
  "$stage/units/certpilot-renew.service" "$stage/units/certpilot-renew.timer" 2>&1) || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
  # Line numbers are those of the sources too: configure_file keeps the lines.
  printf '%s\n' "$out" | sed -e "s|$stage/units/certpilot-renew.service|dist/certpilot-renew.service.in|" \
    -e "s|$stage/units/certpilot-renew.timer|dist/certpilot-renew.timer|" >&2
  fail "systemd-analyze verify reported problems (exit status $status)"
fi
echo "check-units: certpilot-renew.service and .timer verified (installed in ${unit_dir#"$stage/root"})"
