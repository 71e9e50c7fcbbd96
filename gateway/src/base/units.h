/*
 * Parsing of the units config values are written in: durations ("250ms",
 * "1m30s"), sizes ("16k", "10m") and rates ("100/s"). Pure functions, unit
 * tested in tests/unit/base/test_units.c.
 */
#ifndef SL_UNITS_H
#define SL_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/conf.h"

/*
 * Parse a duration: one or more <number><unit> with unit ms, s, m, h or d
 * ("1m30s"), or a bare "0". Returns 0 and sets *ms, or -1.
 */
int sl__parse_duration(const char *s, size_t len, uint64_t *ms);

/*
 * Parse a size: a number with an optional binary multiple k, m or g (either
 * case, optionally followed by "b" or "ib"). Returns 0 and sets *bytes, or -1.
 */
int sl__parse_size(const char *s, size_t len, uint64_t *bytes);

/* The largest N of a rate. */
#define SL_RATE_MAX 1000000000ull

/*
 * Parse a rate "N/s", "N/m", "N/h" or "N/d" (0 < N <= SL_RATE_MAX; the
 * period may also be written sec, second, min, minute, hour, day, and
 * spaces may stand around the slash). Returns 0 and sets the count and the
 * period in milliseconds, or -1.
 */
int sl__parse_rate(const char *s, size_t len, uint64_t *count, uint64_t *period_ms);

/*
 * Parse a request key as written ("ip", "route", "header:NAME",
 * "cookie:NAME", "jwt:CLAIM"), allowing only the sources whose bit
 * (1u << SL_KEY_*) is set in allowed. Sets *out with pointers into s, which
 * must outlive it. Returns 0, or -1.
 */
int sl__parse_key(const char *s, unsigned allowed, struct sl_key *out);

#endif
