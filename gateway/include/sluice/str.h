/*
 * sluice - length-delimited strings.
 *
 * HTTP heads are parsed in place, so most strings the gateway handles are a
 * pointer and a length into a buffer someone else owns. A struct sl_str never
 * owns its bytes and is not NUL-terminated unless its producer says so.
 */
#ifndef SLUICE_STR_H
#define SLUICE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct sl_str {
    const char *p;
    size_t len;
};

/* A struct sl_str for a string literal, without a strlen() at run time. */
#define SL_STR(lit) ((struct sl_str){(lit), sizeof(lit) - 1})
#define SL_STR_NULL ((struct sl_str){NULL, 0})

static inline struct sl_str sl_str_from(const char *s)
{
    return (struct sl_str){s, s ? strlen(s) : 0};
}

static inline bool sl_str_eq(struct sl_str a, struct sl_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ASCII case-insensitive comparison, as header names need. */
static inline bool sl_str_caseeq(struct sl_str a, struct sl_str b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.p, b.p, a.len) == 0);
}

static inline bool sl_str_caseeq_lit(struct sl_str a, const char *lit)
{
    return sl_str_caseeq(a, sl_str_from(lit));
}

static inline bool sl_str_has_prefix(struct sl_str s, struct sl_str prefix)
{
    return s.len >= prefix.len && memcmp(s.p, prefix.p, prefix.len) == 0;
}

#endif
