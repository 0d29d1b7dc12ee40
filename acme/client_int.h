/* acme/client_int.h - what acme/order.c needs from acme/client.c. Private. */
#ifndef CP_ACME_CLIENT_INT_H
#define CP_ACME_CLIENT_INT_H

#include "acme/acme.h"

const struct acme_key *acme_client_key(const struct acme_client *c);
unsigned acme_client_deadline_s(const struct acme_client *c);
/* Unauthenticated GET through the client's transport (RFC 9773 renewalInfo);
 * counted in acme_client_requests().  Any HTTP status is CP_OK. */
enum cp_code acme_client_get(struct acme_client *c, const char *url, struct acme_response *r,
                             struct cp_err *err);

#endif
