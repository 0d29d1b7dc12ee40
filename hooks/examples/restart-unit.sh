#!/bin/sh
# restart-unit.sh - deploy hook: after a renewal, restart one systemd unit, for
# services that read their certificate only at start (many mail, database and
# VPN servers).
#
# The unit to restart, e.g. postfix.service, is the first argument; when there
# is none, the environment variable UNIT names it.
# certpilot sets, as certbot does for its deploy hooks:
#   RENEWED_LINEAGE  the directory holding the new certificate and key
#   RENEWED_DOMAINS  the certificate's names, separated by spaces
# They are only logged here.  Runs as the user certpilot runs as (root, to
# restart a system unit).
#
# Use (a hook is a program and its arguments separated by spaces, run without
# a shell; certpilot saves it with the certificate and `certpilot renew` runs
# it after each renewal):
#   certpilot issue --webroot /var/www/html \
#     --deploy-hook "/usr/local/share/certpilot/hooks/restart-unit.sh postfix.service" \
#     -d mail.example.org
set -eu

unit=${1:-${UNIT:-}}
case $unit in
'' | -*)
    printf 'restart-unit: name the unit to restart as the first argument or in UNIT (got "%s")\n' \
        "$unit" >&2
    exit 1
    ;;
esac
if [ $# -gt 1 ]; then
    printf 'restart-unit: one unit only (got %s arguments)\n' "$#" >&2
    exit 1
fi

printf 'restart-unit: new certificate for %s in %s; restarting %s\n' \
    "${RENEWED_DOMAINS:-(unknown names)}" "${RENEWED_LINEAGE:-(unknown directory)}" "$unit"
systemctl restart -- "$unit"
