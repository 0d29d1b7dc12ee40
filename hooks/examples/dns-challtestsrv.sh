#!/bin/sh
# dns-challtestsrv.sh - dns-01 hook (dehydrated protocol) for pebble-challtestsrv,
# the DNS server that the Pebble test CA asks.  For tests and labs only.
#
#   deploy_challenge DOMAIN TOKEN_FILENAME TOKEN_VALUE
#       POST $CHALLTESTSRV_URL/set-txt   {"host":"_acme-challenge.DOMAIN.","value":"TOKEN_VALUE"}
#   clean_challenge DOMAIN TOKEN_FILENAME TOKEN_VALUE
#       POST $CHALLTESTSRV_URL/clear-txt {"host":"_acme-challenge.DOMAIN."}
#       (challtestsrv clears every TXT value of that host at once: with a
#       wildcard and its base name in one order, the first clean removes both)
#   any other command: does nothing, exits 0.
# Several DOMAIN TOKEN_FILENAME TOKEN_VALUE triples in one call (dehydrated's
# HOOK_CHAIN) are handled one after the other.
#
# Configuration, from the environment:
#   CHALLTESTSRV_URL  challtestsrv's management API, e.g. http://127.0.0.1:8055
#                     (its -management address).  Proxy variables are ignored.
#
# Needs curl, which a minimal Debian does not always have: apt install curl.
#
# Use (Pebble started with -dnsserver pointing at challtestsrv's -dns01 address):
#   CHALLTESTSRV_URL=http://127.0.0.1:8055 \
#     certpilot issue --server https://127.0.0.1:14000/dir --ca-bundle pebble.minica.pem \
#     --challenge dns-01 --dns-hook /usr/share/certpilot/hooks/dns-challtestsrv.sh -d example.test
set -eu

me=dns-challtestsrv

die() {
    printf '%s: %s\n' "$me" "$*" >&2
    exit 1
}

# Names and values go into a JSON string: allow nothing that could end it.
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
deploy_challenge) endpoint=set-txt ;;
clean_challenge) endpoint=clear-txt ;;
*) exit 0 ;;
esac

if [ $# -eq 0 ] || [ $(($# % 3)) -ne 0 ]; then
    die "$command: expected DOMAIN TOKEN_FILENAME TOKEN_VALUE (got $# arguments)"
fi

url=${CHALLTESTSRV_URL:-}
case $url in
http://* | https://*) ;;
*) die "CHALLTESTSRV_URL must be an http:// or https:// URL (got \"$url\")" ;;
esac
url=${url%/}

# Check every triple before sending anything; rotate "$@" into HOST VALUE pairs.
triples=$(($# / 3))
while [ "$triples" -gt 0 ]; do
    check_domain "$1"
    check_value "$3"
    domain=${1#\*.} # a wildcard's challenge lives at the base name
    domain=${domain%.}
    case $domain in
    *'*'*) die "refusing domain name \"$1\" ('*' only as a leading label)" ;;
    esac
    host="_acme-challenge.$domain."
    value=$3
    shift 3
    set -- "$@" "$host" "$value"
    triples=$((triples - 1))
done

command -v curl >/dev/null 2>&1 || die "curl not found (Debian: apt install curl)"

while [ $# -ge 2 ]; do
    if [ "$endpoint" = set-txt ]; then
        body="{\"host\":\"$1\",\"value\":\"$2\"}"
    else
        body="{\"host\":\"$1\"}"
    fi
    curl --silent --show-error --fail --max-time 10 --noproxy '*' --proto '=http,https' \
        --header 'Content-Type: application/json' --data-binary "$body" \
        --output /dev/null "$url/$endpoint"
    printf '%s: %s %s\n' "$me" "$endpoint" "$1"
    shift 2
done
