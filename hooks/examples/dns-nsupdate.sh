#!/bin/sh
# dns-nsupdate.sh - dns-01 hook (dehydrated protocol) that publishes the challenge
# TXT record with an RFC 2136 dynamic update, signed with a TSIG key (nsupdate).
#
#   deploy_challenge DOMAIN TOKEN_FILENAME TOKEN_VALUE
#       adds     _acme-challenge.DOMAIN. 60 IN TXT "TOKEN_VALUE"
#   clean_challenge DOMAIN TOKEN_FILENAME TOKEN_VALUE
#       deletes  exactly that record (other TXT records at the name stay)
#   any other command: does nothing, exits 0.
# Several DOMAIN TOKEN_FILENAME TOKEN_VALUE triples in one call (dehydrated's
# HOOK_CHAIN) are one nsupdate run, one update message per name (RFC 2136: an
# update changes one zone, and the names may be in different zones).
#
# Configuration, from the environment:
#   NSUPDATE_SERVER  the primary server that accepts updates (host name or IP)
#   NSUPDATE_PORT    its port (default 53)
#   NSUPDATE_KEY     a TSIG key file in BIND format, e.g. made by
#                    `tsig-keygen -a hmac-sha256 acme-update > /etc/certpilot/acme-update.key`:
#                      key "acme-update" { algorithm hmac-sha256; secret "base64..."; };
#                    Keep it mode 0600.  The server must allow this key to update
#                    the TXT records at _acme-challenge names, e.g. in BIND:
#                      update-policy { grant acme-update wildcard *.example.org. TXT; };
#   NSUPDATE_ZONE    optional: the zone to update; by default nsupdate finds it
#                    by asking NSUPDATE_SERVER for the name's SOA.
# The zone is taken as-is: if it has secondaries, the CA may ask one before the
# update has reached it (certpilot waits until every authoritative nameserver serves the record).
#
# Needs nsupdate (Debian: apt install dnsutils, i.e. bind9-dnsutils).
#
# Use:
#   NSUPDATE_SERVER=ns1.example.org NSUPDATE_KEY=/etc/certpilot/acme-update.key \
#     certpilot issue --challenge dns-01 --dns-hook /usr/share/certpilot/hooks/dns-nsupdate.sh \
#     -d example.org -d '*.example.org'
set -eu

me=dns-nsupdate

die() {
    printf '%s: %s\n' "$me" "$*" >&2
    exit 1
}

# Names and values end up inside nsupdate's input: allow nothing that could
# end a line or a quoted string there.
check_domain() {
    case $1 in
    '' | *[!A-Za-z0-9._*-]* | .* | *..*) die "refusing domain name \"$1\"" ;;
    esac
}

check_value() {
    # RFC 8555 section 8.4: base64url of a SHA-256 digest.
    case $1 in
    '' | *[!A-Za-z0-9_-]*) die "refusing TXT value \"$1\" (not base64url)" ;;
    esac
}

command=${1:-}
if [ $# -gt 0 ]; then
    shift
fi

case $command in
deploy_challenge) action=add ;;
clean_challenge) action=delete ;;
*) exit 0 ;;
esac

if [ $# -eq 0 ] || [ $(($# % 3)) -ne 0 ]; then
    die "$command: expected DOMAIN TOKEN_FILENAME TOKEN_VALUE (got $# arguments)"
fi

server=${NSUPDATE_SERVER:-}
port=${NSUPDATE_PORT:-53}
key=${NSUPDATE_KEY:-}
zone=${NSUPDATE_ZONE:-}
case $server in
'' | *[!A-Za-z0-9.:-]*) die "NSUPDATE_SERVER must be a host name or address (got \"$server\")" ;;
esac
case $port in
'' | *[!0-9]*) die "NSUPDATE_PORT must be a number (got \"$port\")" ;;
esac
[ -n "$key" ] || die "NSUPDATE_KEY is not set (path to a TSIG key file)"
[ -r "$key" ] || die "NSUPDATE_KEY: cannot read \"$key\""

# nsupdate's input, built only from checked pieces.  No blank line in it:
# nsupdate sends what it has at a blank line.
script="server $server $port"
if [ -n "$zone" ]; then
    check_domain "$zone"
    script="$script
zone ${zone%.}."
fi
names=
while [ $# -ge 3 ]; do
    domain=$1
    value=$3
    shift 3
    check_domain "$domain"
    check_value "$value"
    domain=${domain#\*.} # a wildcard's challenge lives at the base name
    domain=${domain%.}
    case $domain in
    *'*'*) die "refusing domain name \"$domain\" ('*' only as a leading label)" ;;
    esac
    name="_acme-challenge.$domain."
    if [ "$action" = add ]; then
        script="$script
update add $name 60 IN TXT \"$value\"
send"
    else
        script="$script
update delete $name IN TXT \"$value\"
send"
    fi
    names="$names $name"
done

command -v nsupdate >/dev/null 2>&1 || die "nsupdate not found (Debian: apt install dnsutils)"

# Commands on stdin from the here-document: no prompt, no terminal needed.
# nsupdate exits non-zero when the server refuses (REFUSED, NOTAUTH, ...).
nsupdate -t 20 -k "$key" <<END
$script
END
printf '%s: %s:%s\n' "$me" "$command" "$names"
