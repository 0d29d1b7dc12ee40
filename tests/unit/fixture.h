/* tests/unit/fixture.h - what several unit tests build the same way:
 * certificates to store, and temporary directories to remove. */
#ifndef CP_TESTS_FIXTURE_H
#define CP_TESTS_FIXTURE_H

/* A self-signed certificate (PEM, heap) for a new P-256 key, with serial
 * `serial`, valid from `from` (Unix seconds; 0: now) for `seconds`; the
 * key's PEM in *key_pem (heap).  Fails the test on any error. */
char *fixture_cert(long serial, long long from, long long seconds, char **key_pem);

/* rm -rf `path`, never through a symbolic link; 0 on success. */
int fixture_remove_tree(const char *path);

#endif
