#!/bin/sh
# reload-nginx.sh - deploy hook: after a renewal, check nginx's configuration and,
# only if it is valid, reload nginx so that it serves the new certificate.
#
# certpilot sets, as certbot does for its deploy hooks:
#   RENEWED_LINEAGE  the directory holding the new certificate and key
#   RENEWED_DOMAINS  the certificate's names, separated by spaces
# They are only logged here: point nginx's ssl_certificate / ssl_certificate_key
# at the files in RENEWED_LINEAGE once, and a reload is all a renewal needs.
# Runs as the user certpilot runs as (reloading needs root).  `nginx -t` opens
# nginx's log files for writing: certpilot-renew.service allows /var/log/nginx.
#
# Use (certpilot saves the hook with the certificate; `certpilot renew` runs it
# after each renewal):
#   certpilot issue --webroot /var/www/html \
#     --deploy-hook /usr/local/share/certpilot/hooks/reload-nginx.sh \
#     -d example.org -d www.example.org
set -eu

printf 'reload-nginx: new certificate for %s in %s\n' \
    "${RENEWED_DOMAINS:-(unknown names)}" "${RENEWED_LINEAGE:-(unknown directory)}"
# A broken configuration would stop nginx at the reload: test it first.
nginx -t
systemctl reload nginx
