/* tests/unit/fixture.h - what several unit tests build the same way:
 * certificates to store, temporary directories to remove, free ports. */
#ifndef CP_TESTS_FIXTURE_H
#define CP_TESTS_FIXTURE_H

#include <netinet/in.h>
#include <stddef.h>

/* A self-signed certificate (PEM, heap) for a new P-256 key, with serial
 * `serial`, valid from `from` (Unix seconds; 0: now) for `seconds`; the
 * key's PEM in *key_pem (heap).  Fails the test on any error. */
char *fixture_cert(long serial, long long from, long long seconds, char **key_pem);

/* A TCP port free on 127.0.0.1 now (bound, read, released), outside the
 * kernel's ephemeral range where it can. */
int fixture_free_port(void);

/* A DNS question on the UDP socket `fd`, for the loopback responders of
 * the tests: waits at most 20 ms.  0 when none came (or it is no readable
 * question); else the message's length (at most 512, in q), its sender in
 * *from, the question's name in `name` (CAA_NAME_MAX + 1 bytes) and the
 * end of the question (name, type, class) in *qend. */
size_t fixture_dns_question(int fd, unsigned char q[512], struct sockaddr_in *from, char *name,
                            size_t *qend);

/* rm -rf `path`, never through a symbolic link; 0 on success. */
int fixture_remove_tree(const char *path);

#endif
