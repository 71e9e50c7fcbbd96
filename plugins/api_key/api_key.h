/*
 * api_key plugin: what its phase, its config reader and its key table share.
 */
#ifndef SL_PLUGIN_API_KEY_H
#define SL_PLUGIN_API_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "sluice/plugin.h"

#define AK_DIGEST       32 /* SHA-256 */
#define AK_MIN_KEY      16
#define AK_MAX_KEY      1024
#define AK_MAX_CONSUMER 128
#define AK_MAX_LINE     4096 /* a key file's line, newline aside */

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

/*
 * A key file open for reading. Its stdio buffer and its line live here,
 * not on the heap, so that sl__ak_file_close() can wipe both: no byte of
 * a key goes back to malloc (getline()'s buffer, each realloc() leaving a
 * copy behind, did).
 */
struct ak_file {
    FILE *f;
    int line;                  /* the number of the line in buf, from 1 */
    char io[4096];             /* the stream's buffer (setvbuf) */
    char buf[AK_MAX_LINE + 1]; /* the line, NUL-terminated, without its newline */
};

/* Open the key file path into *kf: 0, or -1 with errno set (nothing to
 * close then). */
int sl__ak_file_open(struct ak_file *kf, const char *path);

/*
 * The next line of kf into kf->buf: 1; 0 at the end of the file; -1 with
 * *why set for a line that cannot be a key's (longer than AK_MAX_LINE, or
 * holding a NUL byte, which would cut a key short: the rest of it is
 * skipped); -2 on a read error (errno set: stop there).
 */
int sl__ak_file_next(struct ak_file *kf, const char **why);

/* Close kf and wipe its buffers (OPENSSL_cleanse). */
void sl__ak_file_close(struct ak_file *kf);

/*
 * How many parameters of the query string q are called name, compared
 * decoded as sl_req_query_param() compares them ('%XX', '+' for a space:
 * api%5Fkey is api_key): a key sent twice is refused, as the header is.
 */
unsigned sl__ak_query_count(struct sl_str q, const char *name);

/* NULL when s is a sane consumer name (1 to AK_MAX_CONSUMER characters of
 * [A-Za-z0-9._@+-]), else what is wrong. */
const char *sl__ak_consumer_problem(const char *s);

/* NULL when s is a usable key (AK_MIN_KEY to AK_MAX_KEY visible ASCII
 * characters), else what is wrong, without quoting it. */
const char *sl__ak_key_problem(const char *s);

extern const struct sl_plugin sl_plugin_api_key;

#endif
