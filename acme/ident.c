/*
 * acme/ident.c - identifiers other than plain DNS names: IP addresses
 * (RFC 8738) and which challenge types can validate which identifier.
 */
#include "acme/acme.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

bool acme_ip_normalize(const char *name, char out[ACME_IP_MAX])
{
    unsigned char buf[16];
    char text[ACME_IP_MAX];
    int af;
    if (name == NULL || strlen(name) >= ACME_IP_MAX)
        return false;
    if (inet_pton(AF_INET, name, buf) == 1)
        af = AF_INET;
    else if (inet_pton(AF_INET6, name, buf) == 1)
        af = AF_INET6;
    else
        return false;
    /* RFC 8738 §3: the value is the textual form of RFC 1123 §2.1 or RFC
     * 5952 §4; inet_ntop writes exactly those. */
    if (inet_ntop(af, buf, text, sizeof text) == NULL)
        return false;
    if (out != NULL)
        memcpy(out, text, strlen(text) + 1);
    return true;
}

enum cp_code acme_ip_reverse_name(const char *ip, char out[ACME_REVERSE_MAX], struct cp_err *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (ip != NULL && inet_pton(AF_INET, ip, b) == 1) {
        (void)snprintf(out, ACME_REVERSE_MAX, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
        return CP_OK;
    }
    if (ip == NULL || inet_pton(AF_INET6, ip, b) != 1)
        return cp_err_set(err, CP_EINVAL, "%.64s is not an IP address", ip ? ip : "(null)");
    /* RFC 3596 §2.5: nibbles from the least significant one, each a label. */
    size_t o = 0;
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[b[i] & 0x0f];
        out[o++] = '.';
        out[o++] = hex[b[i] >> 4];
        out[o++] = '.';
    }
    memcpy(out + o, "ip6.arpa", sizeof "ip6.arpa");
    return CP_OK;
}

enum cp_code acme_ident_method_check(const char *ident, const char *type, struct cp_err *err)
{
    if (ident == NULL || type == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_ident_method_check: no identifier or type");
    bool dns_kind = strcmp(type, "dns-01") == 0 || strcmp(type, "dns-persist-01") == 0;
    if (dns_kind && acme_ip_normalize(ident, NULL))
        return cp_err_set(err, CP_EINVAL,
                          "%s cannot validate the IP address %s: RFC 8738 allows only http-01 "
                          "and tls-alpn-01 for IP address identifiers",
                          type, ident);
    bool wildcard = strncmp(ident, "*.", 2) == 0;
    if (wildcard && (strcmp(type, "http-01") == 0 || strcmp(type, "tls-alpn-01") == 0))
        return cp_err_set(err, CP_EINVAL,
                          "%s cannot validate the wildcard name %.260s: only dns-01 (or "
                          "dns-persist-01 with policy=wildcard) can",
                          type, ident);
    return CP_OK;
}
