#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

enum cp_code cp_err_set(struct cp_err *e, enum cp_code code, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    /* Truncation is acceptable here: the message is for humans. */
    (void)vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void cp_err_clear(struct cp_err *e)
{
    if (e == NULL)
        return;
    e->code = CP_OK;
    e->msg[0] = '\0';
}

const char *cp_code_name(enum cp_code code)
{
    switch (code) {
    case CP_OK: return "ok";
    case CP_EINVAL: return "invalid input";
    case CP_ENOMEM: return "out of memory";
    case CP_EDNS: return "DNS set-up failed";
    case CP_EIO: return "local I/O error";
    case CP_ENET: return "network error";
    case CP_EPROTO: return "protocol error";
    case CP_ECA: return "refused by the CA";
    case CP_ECHALLENGE: return "challenge failed";
    case CP_ETIMEOUT: return "timed out";
    case CP_EINTERNAL: return "internal error";
    case CP_EUNSAFE: return "unsafe local file";
    case CP_ESETUP: return "set-up missing";
    }
    return "unknown error";
}
