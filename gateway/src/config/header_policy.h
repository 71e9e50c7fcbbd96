/*
 * Header safety: which request header names the gateway owns, and what
 * happens to header names with underscores, to request trailers and to Via.
 *
 * A name the gateway sets or strips on the way upstream (X-Forwarded-For,
 * X-Client-Cert-Subject, the request id, a claim a plugin forwards...) is
 * owned: whatever the client sent under a name that folds to it ('_' taken
 * for '-', any case: X_Forwarded_For, x_client_cert_subject) never reaches
 * the upstream, whatever headers_with_underscores says. Backends that fold
 * '_' and '-' alike (WSGI, CGI, PHP, Rack) would otherwise take a client's
 * twin for the gateway's own header. Exact copies of the built-in names are
 * dropped by the request checks; exact copies of a plugin's names are the
 * plugin's to replace or keep.
 */
#ifndef SL_HEADER_POLICY_H
#define SL_HEADER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/conf.h"
#include "sluice/str.h"

#include "base/header_names.h"

enum sl_underscores {
    SL_UNDERSCORES_DROP,   /* names with '_' are not forwarded (nginx's default) */
    SL_UNDERSCORES_REJECT, /* a request with one gets 400 */
    SL_UNDERSCORES_ALLOW,  /* forwarded, unless they fold to an owned name */
};

struct sl_header_policy {
    enum sl_underscores underscores;
    bool forward_trailers; /* request_trailers: forward */
    const char *via;       /* the Via pseudonym; NULL when via: off */
    size_t via_len;
    struct sl_header_names owned; /* names plugins declared (generation arena) */
};

/*
 * Read headers_with_underscores, request_trailers and via from the top-level
 * map root into hp (defaults: drop, drop, "sluice"), reporting errors
 * through ctx.
 */
void sl__header_policy_read(struct sl_conf_ctx *ctx, const struct sl_node *root,
                            struct sl_header_policy *hp);

/*
 * Whether a request trailer may go upstream: only with request_trailers:
 * forward, and never an owned name, its twin, Via (when the gateway writes
 * its own) or (unless headers_with_underscores: allow) a name with an
 * underscore. The caller also keeps out what the head's Connection lines
 * name (proxy.c). arg is the
 * struct sl_header_policy; the shape fits sl__head_end_chunked().
 */
bool sl__header_trailer_ok(struct sl_str name, const void *arg);

#endif
