/*
 * libFuzzer target: the Extended DNS Error reader (RFC 8914) of caa/dns.c on
 * DNS answers from the network, and the UTF-8 cleaning of EDE texts.
 *
 * Besides memory safety, it checks what callers rely on: the text found lies
 * inside the answer; the cleaned text is valid UTF-8 without NUL, as checked
 * here by decoding code points arithmetically (not with the table of
 * caa/dns.c); valid input without NUL comes out unchanged when it fits.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caa/dns_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is s[0..n) valid UTF-8 without NUL?  Decode each code point and reject
 * overlong forms, surrogates and values above U+10FFFF. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned long cp, min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static void check_clean(const unsigned char *in, size_t len, size_t size)
{
    char *out = malloc(size);
    if (out == NULL)
        return;
    size_t n = caa_dns_utf8_clean(in, len, out, size);
    if (n >= size || out[n] != '\0' || strlen(out) != n || !valid_utf8((unsigned char *)out, n))
        abort();
    if (valid_utf8(in, len) && len < size && (n != len || memcmp(out, in, len) != 0))
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65535)
        return 0; /* a DNS message is at most 64 KiB */

    unsigned code;
    const unsigned char *text;
    size_t text_len;
    int rc = caa_dns_find_ede(data, (int)size, &code, &text, &text_len);
    if (rc == 1 && text_len > 0 &&
        (text < data || text_len > size || text > data + size - text_len))
        abort();
    if (rc != 1 && (text != NULL || text_len != 0))
        abort();

    struct caa_lookup l;
    memset(&l, 0, sizeof l);
    caa_dns_lookup_ede(&l, data, (int)size);
    if (l.has_ede != (rc == 1) || (rc == 1 && l.ede_code != code))
        abort();
    if (!valid_utf8((unsigned char *)l.ede_text, strlen(l.ede_text)))
        abort();

    /* The whole input as a text, into a large and a small buffer. */
    check_clean(data, size, 3 * size + 1);
    check_clean(data, size, 1 + (size % 16));
    return 0;
}
