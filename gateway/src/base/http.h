/*
 * HTTP/1.1 helpers with no I/O: header classification and validation, path
 * normalisation, reason phrases. Unit tested in tests/unit/base/test_http.c.
 */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/arena.h"
#include "sluice/str.h"

/* A header of a parsed head. */
struct sl_header {
    struct sl_str name, value;
    bool drop; /* hop-by-hop or replaced: not forwarded */
};

/* Headers that describe one connection and are never forwarded (RFC 9110 7.6.1). */
bool sl__http_is_hop_by_hop(struct sl_str name);

/*
 * Call fn for each comma-separated token of a list header value (spaces
 * trimmed, empty elements skipped). Stops early when fn returns true, and
 * returns whether it did.
 */
bool sl__http_tokens(struct sl_str value, bool (*fn)(struct sl_str tok, void *arg), void *arg);

/* Whether a comma-separated list header value contains token (any case). */
bool sl__http_list_has(struct sl_str value, const char *token);

/* A header name is a non-empty RFC 9110 token. */
bool sl__http_valid_name(struct sl_str name);

/* A header value has no control characters other than HTAB (no NUL, CR, LF). */
bool sl__http_valid_value(struct sl_str value);

/* A Host header value: reg-name, IPv4 or [IPv6], optional :port. */
bool sl__http_valid_host(struct sl_str host);

/*
 * Normalise an origin-form path (without query): resolve "." and ".."
 * segments (also when written as %2e), per RFC 3986 5.2.4. Writes into out,
 * which has room for in.len + 1 bytes. Returns the new length, or -1 when the
 * path is invalid (does not start with '/', or ".." climbs above the root).
 */
long sl__http_normalize_path(const char *in, size_t len, char *out);

/* The reason phrase for a status code ("Not Found"), or "Unknown". */
const char *sl__http_reason(int status);

/* Lower-case host without port into out (room for host.len + 1). */
struct sl_str sl__http_host_key(struct sl_str host, char *out);

#endif
