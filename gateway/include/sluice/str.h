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
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

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

/* A random seed for sl_hash(): one per table, so that which keys share a
 * bucket cannot be chosen from outside. */
static inline uint64_t sl_hash_seed(void)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
        s = (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull;
    return s;
}

/*
 * A fast seeded hash of len bytes (8 at a time, multiply-xorshift mixed),
 * for hash tables whose keys clients choose (tokens). Not a digest: a table
 * keeps the key itself and compares it whole. A SHA-256 of a 700-byte token
 * cost some 12,000 instructions (callgrind), this some 300.
 */
static inline uint64_t sl_hash(uint64_t seed, const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull), w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, b + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

#endif
