/*
 * common/err.h - the one error type threaded through every certpilot module.
 *
 * Library functions (acme/, caa/, hooks/) return an enum cp_code and, when the
 * caller passes a struct cp_err, fill it with a human message that names the
 * offending input.  They never print and never exit: only cli/ turns an error
 * into output and an exit status.
 */
#ifndef CP_COMMON_ERR_H
#define CP_COMMON_ERR_H

#include <stddef.h>

enum cp_code {
    CP_OK = 0,
    CP_EINVAL,     /* bad input from the user (identifier, option value) */
    CP_ENOMEM,     /* allocation failed */
    CP_EDNS,       /* DNS library set-up or resolver configuration failed */
    CP_EIO,        /* local file or system call failed */
    CP_ENET,       /* network failure talking to a server */
    CP_EPROTO,     /* a peer sent something we cannot accept */
    CP_ECA,        /* the CA answered with a problem document (returned separately) */
    CP_ECHALLENGE, /* the CA could not validate a challenge */
    CP_ETIMEOUT,   /* an overall deadline passed while waiting (e.g. polling) */
    CP_EINTERNAL,  /* a bug: an invariant did not hold */
    CP_EUNSAFE,    /* a local file or directory that someone else could have changed */
    CP_ESETUP      /* set-up missing or unusable: no account yet, a deactivated account */
};

#define CP_ERR_MSG_MAX 512

struct cp_err {
    enum cp_code code;
    char msg[CP_ERR_MSG_MAX];
};

/* Record an error and return its code.  `e` may be NULL (the code is still
 * returned).  The message is truncated to CP_ERR_MSG_MAX - 1 bytes. */
enum cp_code cp_err_set(struct cp_err *e, enum cp_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reset to CP_OK with an empty message; NULL is a no-op. */
void cp_err_clear(struct cp_err *e);

/* A short stable name for a code ("invalid input", "out of memory", ...). */
const char *cp_code_name(enum cp_code code);

#endif
