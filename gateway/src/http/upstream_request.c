/*
 * The request as the upstream receives it: the request line (the path
 * normalised, strip_prefix applied), Host, the client's fields the gateway
 * forwards, and what the gateway says itself: X-Forwarded-For (appended),
 * -Proto, -Host, X-Client-Cert-Subject, Via (appended), and the framing.
 */
#include "http/upstream_request.h"

#include <string.h>

#include "base/buf.h"
#include "config/config.h"
#include "config/gen.h"
#include "config/header_policy.h"
#include "config/router.h"
#include "http/connection.h"
#include "tls/tls.h"

/*
 * Write one "NAME: " line holding the values of every header called name in
 * the client's head, then ", " (or nothing when there was none), so that
 * the caller appends the gateway's own element: X-Forwarded-For and Via.
 */
static void list_append(struct sl_out *o, struct sl_req *req, struct sl_str name)
{
    uint32_t end = req->head.in_trailers ? req->head.trailers_from : req->head.n;
    bool any = false;

    sl__out_copy(o, name.p, name.len);
    sl__out_copy(o, ": ", 2);
    for (uint32_t i = 0; i < end; i++) {
        struct sl_header *f = &req->head.fields[i];

        if (!sl_str_caseeq(f->name, name) || f->value.len == 0)
            continue;
        if (any)
            sl__out_copy(o, ", ", 2);
        sl__out_copy(o, f->value.p, f->value.len);
        any = true;
    }
    if (any)
        sl__out_copy(o, ", ", 2);
}

void sl__upstream_request_head(struct sl_req *req, struct sl_out *o)
{
    const struct sl_route_conf *r = req->route;
    const struct sl_header_policy *hp = &req->gen->conf->headers;
    struct sl_str path = req->path;
    uint32_t end = req->head.in_trailers ? req->head.trailers_from : req->head.n;

    if (r->strip_prefix != NULL && sl__path_prefix_match(path, sl_str_from(r->strip_prefix))) {
        size_t n = strlen(r->strip_prefix);

        if (r->strip_prefix[n - 1] == '/')
            n--;
        path.p += n;
        path.len -= n;
    }
    sl__out_copy(o, req->method_s.p, req->method_s.len);
    sl__out_copy(o, " ", 1);
    if (path.len == 0 || path.p[0] != '/')
        sl__out_copy(o, "/", 1);
    sl__out_copy(o, path.p, path.len);
    if (req->query.len > 0 ||
        (!req->query_rewritten && req->uri.len > 0 && req->uri.p[req->uri.len - 1] == '?')) {
        sl__out_copy(o, "?", 1);
        sl__out_copy(o, req->query.p, req->query.len);
    }
    sl__out_copy(o, " HTTP/1.1\r\n", 11);
    /* HTTP/1.1 upstream requests need a Host; an HTTP/1.0 client may have
     * sent none: then the target's address stands in. */
    sl__out_field(o, SL_STR("Host"),
                  req->host_hdr.len > 0 ? req->host_hdr : sl_str_from(req->target->conf->ip));
    for (uint32_t i = 0; i < end; i++) {
        struct sl_header *f = &req->head.fields[i];

        if (f->drop)
            continue;
        sl__out_field(o, f->name, f->value);
    }
    list_append(o, req, SL_STR("X-Forwarded-For"));
    sl__out_copy(o, sl__req_ip(req), strlen(sl__req_ip(req)));
    sl__out_copy(o, "\r\n", 2);
    if (hp->via != NULL) { /* RFC 9110 7.6.3: the protocol we received, and who we are */
        list_append(o, req, SL_STR("Via"));
        sl__out_copy(o, req->http_minor == 0 ? "1.0 " : "1.1 ", 4);
        sl__out_copy(o, hp->via, hp->via_len);
        sl__out_copy(o, "\r\n", 2);
    }
    if (req->conn->ssl != NULL && req->conn->ssl->subject != NULL) {
        sl__out_copy(o, "X-Client-Cert-Subject: ", 23);
        sl__out_copy(o, req->conn->ssl->subject, strlen(req->conn->ssl->subject));
        sl__out_copy(o, "\r\n", 2);
    }
    if (req->conn->tls)
        sl__out_copy(o, "X-Forwarded-Proto: https\r\n", 26);
    else
        sl__out_copy(o, "X-Forwarded-Proto: http\r\n", 25);
    if (req->host_hdr.len > 0)
        sl__out_field(o, SL_STR("X-Forwarded-Host"), req->host_hdr);
    if (req->chunked)
        sl__out_copy(o, "Transfer-Encoding: chunked\r\n", 28);
    else if (req->content_length_set) {
        sl__out_copy(o, "Content-Length: ", 16);
        sl__out_uint(o, req->content_length, 10);
        sl__out_copy(o, "\r\n", 2);
    }
    if (req->upgrade) {
        struct sl_str up = sl_req_header(req, "Upgrade");

        sl__out_copy(o, "Connection: upgrade\r\nUpgrade: ", 30);
        sl__out_copy(o, up.p, up.len);
        sl__out_copy(o, "\r\n", 2);
    }
    sl__out_copy(o, "\r\n", 2);
}
