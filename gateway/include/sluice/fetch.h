/*
 * sluice - HTTP(S) requests the gateway makes itself: a JWKS document, an
 * OIDC discovery document, a token introspection. Asynchronous on the
 * caller's loop (a worker's, from a plugin's handler or timer): DNS, connect,
 * TLS with certificate verification, one HTTP/1.1 exchange, no blocking
 * call anywhere.
 *
 * The callback runs exactly once, on the loop, and never from inside
 * sl_fetch() itself (so the caller may store the handle first), unless
 * sl_fetch() returns NULL (then it never runs) or sl_fetch_cancel() is
 * called first (then it never runs either).
 */
#ifndef SLUICE_FETCH_H
#define SLUICE_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct sl_fetch_opts {
    const char *method;  /* "GET" (default when NULL) or "POST" */
    const char *url;     /* http:// or https://host[:port]/path?query */
    const char *ca_file; /* for https: the CAs to trust (NULL: the system's) */
    const char *headers; /* extra header lines, each ending in "\r\n", or NULL */
    const char *body;    /* POST body (copied), or NULL */
    size_t body_len;
    uint64_t timeout_ms; /* the whole exchange (default 5000 when 0) */
    size_t max_body;     /* a longer response body fails (default 1 MiB when 0) */
};

struct sl_fetch_result {
    int status;        /* the HTTP status, or 0 when there was no response */
    const char *error; /* NULL, or why it failed (for the log) */
    const char *body;  /* the response body (NUL-terminated), borrowed */
    size_t body_len;   /* until the callback returns */
    bool has_max_age;  /* Cache-Control: max-age=N was sent */
    uint64_t max_age_s;
};

typedef void sl_fetch_done_fn(void *arg, const struct sl_fetch_result *r);

struct sl_fetch;

/*
 * Start a request on loop. Everything in o is copied. Returns a handle for
 * sl_fetch_cancel(), or NULL when the request cannot start (a malformed
 * URL, an unreadable CA file): then done never runs. A status other than
 * 2xx is not an error: the result says it.
 */
struct sl_fetch *sl_fetch(uv_loop_t *loop, const struct sl_fetch_opts *o, sl_fetch_done_fn *done,
                          void *arg);

/* Abandon a request whose callback has not run yet: it never will. */
void sl_fetch_cancel(struct sl_fetch *f);

/* Whether sl_fetch() can take url: http:// or https://, a host, a port in
 * 1..65535, no user:password@, no spaces. For config checks. */
bool sl_fetch_url_ok(const char *url);

/* Whether url's host is a loopback address (127.0.0.0/8, ::1) or
 * localhost (http:// to it needs no warning). */
bool sl_fetch_url_is_loopback(const char *url);

#endif
