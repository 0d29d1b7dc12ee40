/*
 * libFuzzer target: DNS answers from the network (resolvers and nameservers).
 * Feeds the bytes to the resource-record walker with its CNAME bookkeeping,
 * and to the readers of caa/zone.c (direct TXT answers, SOA answers).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "caa/dns_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65535)
        return 0; /* a DNS message is at most 64 KiB */
    int alen = (int)size;

    struct caa_dns_walk w;
    struct caa_dns_rr rr;
    struct caa_dns_aliases al = {0};
    if (caa_dns_walk_start(&w, data, alen) == 0) {
        while (caa_dns_walk_next(&w, &rr) == 1) {
            if (rr.section == CAA_DNS_ANSWER && rr.type == CAA_DNS_TYPE_CNAME)
                (void)caa_dns_aliases_add(&al, &w, &rr);
        }
        (void)caa_dns_aliases_follow(&al, "example.com");
    }

    struct caa_txt_seen seen;
    (void)caa_zone_read_txt(data, alen, "_acme-challenge.example.com",
                            "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", &seen);

    char target[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1];
    (void)caa_zone_from_soa_answer(data, alen, "_acme-challenge.example.com", target, zone);
    return 0;
}
