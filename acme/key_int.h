/*
 * acme/key_int.h - private to acme/ (and its unit tests): the RFC 7638
 * thumbprint of a JWK given as JSON, which acme_key_thumbprint() uses for its
 * own key and which lets the tests check the RFC's example key.
 */
#ifndef CP_ACME_KEY_INT_H
#define CP_ACME_KEY_INT_H

#include <jansson.h>

#include "common/err.h"

/*
 * RFC 7638 §3: take the required members of `jwk` for its "kty" (EC: crv,
 * kty, x, y; RSA: e, kty, n; all must be strings), serialize them with the
 * keys sorted and no whitespace, SHA-256, base64url.  Other members ("alg",
 * "kid", ...) are ignored.  CP_EINVAL for a JWK without the required members
 * or with another kty.
 */
enum cp_code acme_jwk_thumbprint(const json_t *jwk, char out[44], struct cp_err *err);

#endif
