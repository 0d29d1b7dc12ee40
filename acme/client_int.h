/* acme/client_int.h - what acme/order.c, acme/ari.c and acme/revoke.c need
 * from acme/client.c. Private. */
#ifndef CP_ACME_CLIENT_INT_H
#define CP_ACME_CLIENT_INT_H

#include "acme/acme.h"

const struct acme_key *acme_client_key(const struct acme_client *c);
unsigned acme_client_deadline_s(const struct acme_client *c);
/* Unauthenticated GET through the client's transport (RFC 9773 renewalInfo);
 * counted in acme_client_requests().  Any HTTP status is CP_OK. */
enum cp_code acme_client_get(struct acme_client *c, const char *url, struct acme_response *r,
                             struct cp_err *err);

/* acme_post() signed by `key` with its JWK instead of the client's account
 * (RFC 8555 §7.6: revocation by the certificate's own key).  The client's
 * account is neither used nor changed; nonces and retries as acme_post(). */
enum cp_code acme_post_jwk(struct acme_client *c, const struct acme_key *key, const char *url,
                           const char *payload, struct acme_response *resp,
                           struct acme_problem *prob, struct cp_err *err);

/* One progress line through the client's log callback (acme_client_opts.log;
 * nothing when it has none).  Never secrets. */
void acme_client_say(struct acme_client *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
