/*
 * common/civil.h - calendar arithmetic for dates read from the network
 * (certificate validity, HTTP Retry-After), where timegm() is not POSIX, and
 * the one way times are written.
 */
#ifndef CP_COMMON_CIVIL_H
#define CP_COMMON_CIVIL_H

#include <stdint.h>

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12),
 * negative before the epoch.  H. Hinnant's days_from_civil algorithm. */
int64_t cp_days_from_civil(int64_t y, int m, int d);

/* Unix time `t` as RFC 3339 UTC ("2026-11-24T18:00:00Z"), the one form
 * certpilot writes times in (output, status and account records). */
void cp_time_str(long long t, char out[32]);

#endif
