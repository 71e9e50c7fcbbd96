/*
 * An admin request's query string, checked against what its endpoint
 * accepts: an admin endpoint acts only on parameters it knows, so a typo
 * ("?dryrun=1") is refused with 400 instead of being ignored while the
 * request does something else (a real reload).
 */
#ifndef SL_ADMIN_QUERY_H
#define SL_ADMIN_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define SL_QUERY_MAX 8
#define SL_QUERY_LEN 8192 /* the admin API's URL limit */

struct sl_query {
    size_t n;
    const char *name[SL_QUERY_MAX];  /* percent-decoded, into buf */
    const char *value[SL_QUERY_MAX]; /* "" for a name without '=' */
    const char *bad;                 /* after an error: the parameter at fault */
    /* Each part decodes to at most its length and a NUL; the parse stops
     * at the first bad one, after at most SL_QUERY_MAX good ones. */
    char buf[SL_QUERY_LEN + 4 * SL_QUERY_MAX];
};

enum sl_query_result {
    SL_QUERY_OK = 0,
    SL_QUERY_UNKNOWN = -1, /* q->bad is not in accepted */
    SL_QUERY_TWICE = -2,   /* q->bad is given more than once */
    /* a part decodes to NUL or another control character: q->bad is that
     * part as written ("dry_run%00junk=1") */
    SL_QUERY_CONTROL = -3,
};

/*
 * Parse the query s (len bytes, after the '?'; "a=1&b", empty parts
 * skipped, %XX and '+' decoded) into q, accepting only the names in
 * accepted (NULL-terminated; NULL accepts none), each once, none decoding
 * to a control character (%00 would cut it short). s longer than
 * SL_QUERY_LEN is refused as unknown.
 */
enum sl_query_result sl__query_parse(struct sl_query *q, const char *s, size_t len,
                                     const char *const *accepted);

/* The value of name (borrowed from q), or NULL when it was not given. */
const char *sl__query_get(const struct sl_query *q, const char *name);

#endif
