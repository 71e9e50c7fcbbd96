/*
 * api_key plugin: what its phase, its config reader and its key table share.
 */
#ifndef SL_PLUGIN_API_KEY_H
#define SL_PLUGIN_API_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/plugin.h"

#define AK_DIGEST       32 /* SHA-256 */
#define AK_MIN_KEY      16
#define AK_MAX_KEY      1024
#define AK_MAX_CONSUMER 128

/*
 * The keys of a route, by the SHA-256 of each: the keys themselves are
 * never kept. Open addressing on the digest's first bytes (uniform, and
 * what a client can learn from them is nothing about a key); a lookup
 * compares whole digests with CRYPTO_memcmp, in constant time.
 */
struct ak_slot {
    unsigned char digest[AK_DIGEST];
    const char *consumer; /* NULL: an empty slot */
};

struct ak_table {
    struct ak_slot *slots;
    size_t mask; /* slots - 1, a power of two at least twice the keys */
};

struct ak_conf {
    struct ak_table keys;
    const char *header;    /* X-Api-Key, or NULL: not read from a header */
    const char *query;     /* or NULL (the default): not read from the URL */
    bool hide_credentials; /* default true: the key does not go upstream */
    const char *challenge; /* the WWW-Authenticate value of a 401 */
};

void *sl__api_key_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

/* The SHA-256 of len bytes of key into out. */
void sl__ak_digest(const char *key, size_t len, unsigned char out[AK_DIGEST]);

/*
 * The consumer whose key has this digest (borrowed from the table), or
 * NULL. Every slot on the way is compared whole, in constant time.
 */
const char *sl__ak_find(const struct ak_table *t, const unsigned char digest[AK_DIGEST]);

/*
 * Put digest in t, whose slots are at least twice the keys. Returns
 * NULL, or the consumer that already has this digest (a duplicate key:
 * nothing is put).
 */
const char *sl__ak_put(struct ak_table *t, const unsigned char digest[AK_DIGEST],
                       const char *consumer);

/*
 * One line of a key file ("consumer: key", '#' comments and blank lines),
 * modified in place: 1 with *consumer and *key set (NUL-terminated, trimmed
 * of blanks), 0 for a line with no key, -1 with *why set (never quoting the
 * line, which may hold a key).
 */
int sl__ak_parse_line(char *line, const char **consumer, const char **key, const char **why);

/* NULL when s is a sane consumer name (1 to AK_MAX_CONSUMER characters of
 * [A-Za-z0-9._@+-]), else what is wrong. */
const char *sl__ak_consumer_problem(const char *s);

/* NULL when s is a usable key (AK_MIN_KEY to AK_MAX_KEY visible ASCII
 * characters), else what is wrong, without quoting it. */
const char *sl__ak_key_problem(const char *s);

extern const struct sl_plugin sl_plugin_api_key;

#endif
