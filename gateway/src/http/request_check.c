/*
 * The checks of a complete request head, before anything goes upstream:
 * the version, the method and the request target (normalised), every
 * framing rule about Content-Length, Transfer-Encoding and Host that a chain
 * of parsers could read two ways, and the header safety rules
 * (config/header_policy.h). What llhttp checks itself, and the bytes it
 * lets through, are request_parse.c's.
 */
#include "http/request_check.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/gen.h"
#include "config/header_policy.h"

static bool drop_named(struct sl_str tok, void *arg)
{
    struct sl_req *req = arg;

    if (sl_str_caseeq_lit(tok, "close") || sl_str_caseeq_lit(tok, "keep-alive") ||
        sl_str_caseeq_lit(tok, "upgrade"))
        return false;
    /* Twins too: under headers_with_underscores: allow, Connection: X-Foo
     * takes X_Foo with it. */
    for (uint32_t i = 0; i < req->head.n; i++)
        if (sl__header_fold_eq(req->head.fields[i].name, tok))
            req->head.fields[i].drop = true;
    return false;
}

/* Split the request-target into path and query, normalising the path.
 * Returns NULL or what is wrong with it. */
static const char *parse_target(struct sl_req *req, struct sl_str *abs_host)
{
    struct sl_str t = req->uri, path;
    const char *q;
    char *norm;
    long n;

    if (memchr(t.p, '#', t.len) != NULL)
        return "a request target must not contain a fragment";
    if (t.len > 0 && t.p[0] != '/') {
        size_t skip;

        /* absolute-form (RFC 9112 3.2.2): the authority replaces Host. */
        if (t.len > 7 && strncasecmp(t.p, "http://", 7) == 0)
            skip = 7;
        else if (t.len > 8 && strncasecmp(t.p, "https://", 8) == 0)
            skip = 8;
        else
            return "unsupported request target form";
        t.p += skip;
        t.len -= skip;
        {
            const char *slash = memchr(t.p, '/', t.len);
            size_t alen = slash ? (size_t)(slash - t.p) : t.len;

            if (memchr(t.p, '@', alen) != NULL || alen == 0)
                return "bad authority in request target";
            *abs_host = (struct sl_str){t.p, alen};
            t.p += alen;
            t.len -= alen;
            if (t.len == 0)
                t = SL_STR("/");
        }
    }
    if (t.len == 0)
        return "empty request target";
    q = memchr(t.p, '?', t.len);
    path = (struct sl_str){t.p, q ? (size_t)(q - t.p) : t.len};
    req->query = q ? (struct sl_str){q + 1, t.len - path.len - 1} : (struct sl_str){"", 0};
    norm = sl_arena_alloc(&req->arena, path.len + 2);
    if (norm == NULL)
        return "request too large";
    n = sl__http_normalize_path(path.p, path.len, norm);
    if (n < 0)
        return "the path climbs above the root";
    req->path = (struct sl_str){norm, (size_t)n};
    return NULL;
}

/*
 * Header safety (header_policy.h) over the whole head: names with an
 * underscore and twins of the names the gateway owns, the options named by
 * every Connection line (RFC 9110 7.6.1: all of them, not the first line's),
 * the client's Via (re-sent with ours appended), and Trailer when request
 * trailers are not forwarded. Returns NULL, or why the request is refused.
 */
static const char *check_names(struct sl_req *req)
{
    const struct sl_header_policy *hp = &req->gen->conf->headers;

    for (uint32_t i = 0; i < req->head.n; i++) {
        struct sl_header *h = &req->head.fields[i];

        if (memchr(h->name.p, '_', h->name.len) != NULL) {
            if (hp->underscores == SL_UNDERSCORES_REJECT)
                return "header names with underscores are refused here "
                       "(headers_with_underscores: reject)";
            if (hp->underscores == SL_UNDERSCORES_DROP || sl__header_owned(&hp->owned, h->name))
                h->drop = true;
        } else if (sl_str_caseeq_lit(h->name, "Connection")) {
            sl__http_tokens(h->value, drop_named, req);
        } else if (hp->via != NULL && sl_str_caseeq_lit(h->name, "Via")) {
            h->drop = true; /* re-sent with our entry appended */
        } else if (!hp->forward_trailers && sl_str_caseeq_lit(h->name, "Trailer")) {
            h->drop = true; /* the trailers it announces will not come */
        }
    }
    return NULL;
}

/* What the field checks gather about a head. */
struct seen {
    struct sl_header *host;
    uint32_t n_te;
};

/*
 * One header field: framing and connection headers are judged, and what the
 * gateway re-sends itself (Host, Content-Length, X-Forwarded-*,
 * X-Client-Cert-Subject) or removes (hop-by-hop, Expect) is marked not to
 * be forwarded. Returns 0 or an HTTP status with *why.
 */
static int check_field(struct sl_req *req, const llhttp_t *p, struct sl_header *h,
                       struct seen *seen, const char **why)
{
    struct sl_str n = h->name;

    if (n.len == 0) {
        *why = "empty header name";
        return 400;
    }
    if (sl__http_is_hop_by_hop(n)) {
        h->drop = true;
        if (sl_str_caseeq_lit(n, "Transfer-Encoding")) {
            seen->n_te++;
            if (!sl_str_caseeq_lit(h->value, "chunked")) {
                *why = "only Transfer-Encoding: chunked is accepted";
                return 400;
            }
        } else if (sl_str_caseeq_lit(n, "Connection")) {
            if (sl__http_list_has(h->value, "close"))
                req->keepalive = false;
            else if (p->http_minor == 0 && sl__http_list_has(h->value, "keep-alive"))
                req->keepalive = true;
        }
        return 0;
    }
    if (sl_str_caseeq_lit(n, "Host")) {
        if (seen->host != NULL) {
            *why = "more than one Host header";
            return 400;
        }
        seen->host = h;
        h->drop = true;
    } else if (sl_str_caseeq_lit(n, "Expect")) {
        h->drop = true;
        if (!sl_str_caseeq_lit(h->value, "100-continue")) {
            *why = "unsupported expectation";
            return 417;
        }
        req->expect_continue = p->http_minor == 1;
    } else if (sl_str_caseeq_lit(n, "Content-Length") ||  /* re-sent from the parsed value */
               sl_str_caseeq_lit(n, "X-Forwarded-For") || /* re-sent with the client appended */
               sl_str_caseeq_lit(n, "X-Forwarded-Host") ||
               sl_str_caseeq_lit(n, "X-Forwarded-Proto") ||
               sl_str_caseeq_lit(n, "X-Client-Cert-Subject")) { /* only we say who it is */
        h->drop = true;
    }
    return 0;
}

/* Transfer-Encoding: one, chunked, in HTTP/1.1 only. NULL or why not. */
static const char *check_framing(const llhttp_t *p, uint32_t n_te)
{
    if (n_te > 1)
        return "more than one Transfer-Encoding header";
    if (n_te == 1 && p->http_minor == 0)
        return "Transfer-Encoding in an HTTP/1.0 request";
    if (n_te == 1 && !(p->flags & F_CHUNKED))
        return "bad Transfer-Encoding";
    return NULL;
}

/* The host the request names: its Host header or an absolute-form
 * target's authority, checked, and its routing key. 0 or a status. */
static int take_host(struct sl_req *req, const llhttp_t *p, const struct sl_header *host,
                     struct sl_str abs_host, const char **why)
{
    char *hostkey;

    if (host == NULL && p->http_minor == 1 && abs_host.p == NULL) {
        *why = "missing Host header";
        return 400;
    }
    if (host != NULL && !sl__http_valid_host(host->value)) {
        *why = "invalid Host header";
        return 400;
    }
    if (abs_host.p != NULL && !sl__http_valid_host(abs_host)) {
        *why = "invalid authority in request target";
        return 400;
    }
    req->host_hdr = abs_host.p ? abs_host : host ? host->value : SL_STR("");
    hostkey = sl_arena_alloc(&req->arena, req->host_hdr.len + 1);
    if (hostkey == NULL) {
        *why = "request too large";
        return 431;
    }
    req->host = sl__http_host_key(req->host_hdr, hostkey);
    return 0;
}

int sl__request_check(struct sl_req *req, const llhttp_t *p, const char **why)
{
    struct sl_str abs_host = SL_STR_NULL;
    struct seen seen = {0};
    int status;

    req->method = p->method;
    req->http_minor = p->http_minor;
    req->method_s = sl_str_from(llhttp_method_name((llhttp_method_t)p->method));
    req->uri = sl__head_start_line(&req->head);
    req->head_done = true;
    sl__head_trim(&req->head);

    if (p->http_major != 1 || p->http_minor > 1) {
        *why = "only HTTP/1.0 and HTTP/1.1 are supported";
        return 505;
    }
    if (p->method == HTTP_CONNECT || p->method == HTTP_PRI || p->method > HTTP_SOURCE) {
        *why = "this method is not supported by the gateway";
        return 400;
    }
    if ((*why = parse_target(req, &abs_host)) != NULL)
        return 400;
    req->keepalive = p->http_minor == 1;
    for (uint32_t i = 0; i < req->head.n; i++)
        if ((status = check_field(req, p, &req->head.fields[i], &seen, why)) != 0)
            return status;
    if ((*why = check_framing(p, seen.n_te)) != NULL || (*why = check_names(req)) != NULL)
        return 400;
    if ((status = take_host(req, p, seen.host, abs_host, why)) != 0)
        return status;

    req->chunked = (p->flags & F_CHUNKED) != 0;
    req->content_length_set = (p->flags & F_CONTENT_LENGTH) != 0;
    req->content_length = req->content_length_set ? p->content_length : 0;
    req->has_body = req->chunked || req->content_length > 0;
    req->upgrade = p->upgrade && p->method != HTTP_CONNECT;
    if (!req->has_body)
        req->expect_continue = false;
    return 0;
}
