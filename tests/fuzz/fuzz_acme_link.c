/*
 * tests/fuzz/fuzz_acme_link.c - libFuzzer target for the RFC 8288 Link parser
 * in acme/http.c (acme_link_next).  The input is split at '\n' into Link
 * header values of a hand-built response; every relation asked for is
 * resolved against a fixed base URL.  No network is used.
 *
 * Needs: acme/http.c common/err.c, libcurl, OpenSSL, jansson.
 * Seeds: corpus/acme_link/.
 */
#include "acme/acme.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const rels[] = {"up", "index", "alternate", "next up"};
    struct acme_response r = {0};
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    size_t cap = 1;
    for (size_t i = 0; i < size; i++)
        cap += data[i] == '\n';
    r.links = calloc(cap, sizeof *r.links);
    if (r.links == NULL)
        goto out;
    for (char *line = text, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        r.links[r.nlinks] = strdup(line);
        if (r.links[r.nlinks] == NULL)
            goto out;
        r.nlinks++;
    }

    for (size_t k = 0; k < sizeof rels / sizeof rels[0]; k++) {
        size_t pos = 0, prev = 0;
        char *u;
        while ((u = acme_link_next(&r, rels[k], k % 2 ? NULL : "https://ca.test/acme/cert/1",
                                   &pos)) != NULL) {
            if (pos <= prev && prev != 0)
                abort(); /* must make progress */
            prev = pos;
            free(u);
        }
    }
out:
    acme_response_clear(&r);
    free(text);
    return 0;
}
