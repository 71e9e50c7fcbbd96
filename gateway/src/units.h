/*
 * Parsing of the units config values are written in: durations ("250ms",
 * "1m30s"), sizes ("16k", "10m") and rates ("100/s"). Pure functions, unit
 * tested in tests/unit/test_units.c.
 */
#ifndef SL_UNITS_H
#define SL_UNITS_H

#include <stddef.h>
#include <stdint.h>

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

/*
 * Parse a rate "N/s", "N/m", "N/h" or "N/d" (N > 0). Returns 0 and sets the
 * count and the period in milliseconds, or -1.
 */
int sl__parse_rate(const char *s, size_t len, uint64_t *count, uint64_t *period_ms);

#endif
