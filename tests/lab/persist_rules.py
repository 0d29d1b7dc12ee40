"""dns-persist-01 record rules (draft-ietf-acme-dns-persist §4.1, §4.2), as the
lab's ACME proxy applies them in the CA's place.

Written on its own from the draft, not from certpilot's caa/persist.c, so that
the two can disagree in a test.  The value is a CAA issue-value (RFC 8659
§4.2, the grammar as Let's Encrypt reads it, shared/spec §6): the issuer
domain name; then ";"-separated tag=value parameters, tags of letters and
digits, values of 0x21-0x7E.  The rules:
- the issuer domain name is one the CA names (case-insensitive);
- the value parses; accounturi, policy and persistUntil appear at most once;
- accounturi is present and equals the requesting account's URL exactly;
- a wildcard authorization needs policy=wildcard (value case-insensitive);
- persistUntil, when present, is a base-10 integer, not before now.
Unknown parameters are ignored.  Any one record passing all rules authorizes.
"""

import re
import time

_TAG = re.compile(r"^[A-Za-z0-9]*$")


def _parse(value):
    """(issuer, {tag: [values]}) or (issuer, None) when malformed."""
    pieces = value.split(";")
    issuer = pieces[0].strip(" \t")
    params = {}
    rest = pieces[1:]
    if len(rest) == 1 and rest[0].strip(" \t") == "":
        return issuer, params
    for piece in rest:
        if "=" not in piece:
            return issuer, None
        tag, _, val = piece.partition("=")
        tag, val = tag.strip(" \t"), val.strip(" \t")
        if not _TAG.match(tag) or any(not 0x21 <= ord(ch) <= 0x7E for ch in val):
            return issuer, None
        params.setdefault(tag, []).append(val)
    return issuer, params


def judge(value, issuers, account, wildcard, now=None):
    """None when the record authorizes, else the reason (a str)."""
    now = time.time() if now is None else now
    issuer, params = _parse(value)
    if issuer.lower() not in [i.lower() for i in issuers]:
        return "the record names the issuer %r, not one of %s" % (issuer, ", ".join(issuers))
    if params is None:
        return "the record %r is not in the issue-value syntax" % value
    for tag in ("accounturi", "policy", "persistUntil"):
        if len(params.get(tag, [])) > 1:
            return "the record gives %s more than once" % tag
    until = params.get("persistUntil", [None])[0]
    if until is not None and not re.match(r"^[0-9]+$", until):
        return "persistUntil %r is not a base-10 integer" % until
    if "accounturi" not in params:
        return "the record has no accounturi"
    if params["accounturi"][0] != account:
        return "the record is for the account %s, not %s" % (params["accounturi"][0], account)
    if wildcard and params.get("policy", [""])[0].lower() != "wildcard":
        return "the authorization is for a wildcard and the record lacks policy=wildcard"
    if until is not None and now > int(until):
        return "the record expired at persistUntil=%s" % until
    return None


def evaluate(values, issuers, account, wildcard, name, now=None):
    """None when one of the TXT values authorizes, else the reasons joined."""
    if not values:
        return "no TXT record at _validation-persist.%s" % name
    reasons = []
    for value in values:
        why = judge(value, issuers, account, wildcard, now)
        if why is None:
            return None
        reasons.append(why)
    return "; ".join(reasons)
