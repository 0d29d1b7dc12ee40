#!/bin/sh
# reload-apache.sh - deploy hook: after a renewal, check Apache's configuration and,
# only if it is valid, reload apache2 (graceful: open connections finish).
#
# certpilot sets, as certbot does for its deploy hooks:
#   RENEWED_LINEAGE  the directory holding the new certificate and key
#   RENEWED_DOMAINS  the certificate's names, separated by spaces
# They are only logged here: point SSLCertificateFile / SSLCertificateKeyFile at
# the files in RENEWED_LINEAGE once, and a reload is all a renewal needs.
# Runs as the user certpilot runs as (reloading needs root).  The unit is
# Debian's apache2; other systems call it httpd.
#
# Use (certpilot saves the hook with the certificate; `certpilot renew` runs it
# after each renewal):
#   certpilot issue --webroot /var/www/html \
#     --deploy-hook /usr/local/share/certpilot/hooks/reload-apache.sh \
#     -d example.org -d www.example.org
set -eu

printf 'reload-apache: new certificate for %s in %s\n' \
    "${RENEWED_DOMAINS:-(unknown names)}" "${RENEWED_LINEAGE:-(unknown directory)}"
apachectl configtest
systemctl reload apache2
