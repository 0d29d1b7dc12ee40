/* acme/client_int.h - what acme/order.c needs from acme/client.c. Private. */
#ifndef CP_ACME_CLIENT_INT_H
#define CP_ACME_CLIENT_INT_H

#include "acme/acme.h"

const struct acme_key *acme_client_key(const struct acme_client *c);
unsigned acme_client_deadline_s(const struct acme_client *c);

#endif
