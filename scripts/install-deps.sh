#!/usr/bin/env bash
# Install the Debian 12 packages certpilot needs to build, test and run its lab.
# Runs as root; installs only what is missing, so a prepared machine costs ~1 s.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang clang-format cppcheck
  libssl-dev libcurl4-openssl-dev libjansson-dev libc-ares-dev libcmocka-dev
  knot knot-dnsutils unbound pebble python3 python3-dnslib openssl dnsutils curl time faketime strace
  systemd zsh dehydrated certbot etcd-server etcd-client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The lab starts its own knotd and unbound on loopback; Debian's service
# instances are neither needed nor wanted (no systemd in containers anyway).
# Likewise etcd: the lab runs its own members (tests/lab/etcd.py); the packaged
# service would hold port 2379 and a data dir in /var/lib/etcd.
if [[ " ${missing[*]} " == *" etcd-server "* ]]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now etcd.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/etcd ]; then
    /etc/init.d/etcd stop >/dev/null 2>&1 || true
    update-rc.d etcd disable >/dev/null 2>&1 || true
  fi
fi
