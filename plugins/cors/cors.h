/*
 * cors plugin: what its phases, its config reader and its origin matcher
 * share.
 */
#ifndef SL_PLUGIN_CORS_H
#define SL_PLUGIN_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/plugin.h"

/*
 * One entry of origins: an exact origin ("https://app.example.com:8443"),
 * or a pattern of subdomains (*.example.org, or https:// followed by it).
 * Exact origins and ports compare as written (ASCII case aside); a pattern
 * without a scheme is https only.
 */
struct cors_origin {
    bool pattern;
    const char *text;     /* as written */
    struct sl_str scheme; /* a pattern's: as written, or "https" */
    struct sl_str suffix; /* a pattern's ".example.org" */
    struct sl_str port;   /* a pattern's ":8443", or {"", 0}: the default port */
};

struct cors_conf {
    bool any_origin; /* origins: ["*"] */
    struct cors_origin *origins;
    size_t n_origins;
    const char **methods;     /* NULL-terminated */
    bool any_method;          /* methods: ["*"]: the requested one is echoed */
    const char **headers;     /* NULL-terminated, or NULL: any requested header is echoed */
    const char *methods_text; /* "GET, HEAD, POST" */
    const char *headers_text; /* or NULL */
    const char *expose_text;  /* or NULL */
    const char *max_age_text; /* seconds, or NULL: no Access-Control-Max-Age */
    bool credentials;
};

void *sl__cors_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

/*
 * Read one entry of origins (not "*"): 0 with *o filled (its strings point
 * into text, which must outlive it), or -1 with *why saying what is wrong.
 */
int sl__cors_origin_parse(const char *text, struct cors_origin *o, const char **why);

/* Whether origin (a request's Origin header) is one of list[0..n). A value
 * that is not a well-formed scheme://host[:port] never is. */
bool sl__cors_origin_allowed(const struct cors_origin *list, size_t n, struct sl_str origin);

/* Whether o allows pages sent in plain http (http://, loopback hosts
 * aside), which anyone on their network path can change. */
bool sl__cors_origin_plaintext(const struct cors_origin *o);

/* Whether s is an HTTP token (RFC 9110 5.6.2): a method or a field name. */
bool sl__cors_is_token(struct sl_str s);

extern const struct sl_plugin sl_plugin_cors;

#endif
