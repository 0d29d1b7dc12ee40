#!/bin/sh
# restart-unit.sh - deploy hook: after a renewal, restart one systemd unit, for
# services that read their certificate only at start (many mail, database and
# VPN servers).
#
# Configuration, from the environment:
#   UNIT             the unit to restart, e.g. postfix.service (required)
# certpilot sets, as certbot does for its deploy hooks:
#   RENEWED_LINEAGE  the directory holding the new certificate and key
#   RENEWED_DOMAINS  the certificate's names, separated by spaces
# They are only logged here.  Runs as the user certpilot runs as (root, to
# restart a system unit).
#
# Use:
#   UNIT=postfix.service \
# (--deploy-hook is planned with 'certpilot renew'; certpilot does not run deploy hooks yet)
#     certpilot issue --webroot /var/www/html --deploy-hook /usr/share/certpilot/hooks/restart-unit.sh \
#     -d mail.example.org
set -eu

unit=${UNIT:-}
case $unit in
'' | -*) printf 'restart-unit: set UNIT to the unit to restart (got "%s")\n' "$unit" >&2; exit 1 ;;
esac

printf 'restart-unit: new certificate for %s in %s; restarting %s\n' \
    "${RENEWED_DOMAINS:-(unknown names)}" "${RENEWED_LINEAGE:-(unknown directory)}" "$unit"
systemctl restart -- "$unit"
