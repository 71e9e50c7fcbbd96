/*
 * Gateway-made responses.
 */
#include "http/respond.h"

#include <stdio.h>
#include <string.h>

#include "base/sbuf.h"
#include "http/conn.h"
#include "http/proxy.h"
#include "http/req.h"

void sl__respond_error(struct sl_req *req, int status, const char *code, const char *message)
{
    struct sl_conn *c = req->conn;
    struct sl_resp_head rh;
    struct sl_sbuf body = {0};

    if (req->finished || c->closed)
        return;
    sl__proxy_abort(req); /* whatever the upstream was doing is moot */
    if (req->resp_started) {
        /* Part of a response is out: the only honest signal left is to cut
         * the connection. */
        req->down->abort(req);
        return;
    }
    req->status = status;
    req->error_code = code;
    req->resp_started = true;
    req->resp_proxied = false;
    if (status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
        status == 505 || status == 417 || (req->has_body && !req->body_done) || !req->head_done ||
        req->upgrade)
        req->keepalive = false;

    sl__req_response_phase(req);
    if (status == 401 && sl_resp_header(req, "WWW-Authenticate").p == NULL)
        sl_resp_header_add(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");

    if (code != NULL) {
        sl__sbuf_lit(&body, "{\"error\": ");
        sl__sbuf_json(&body, sl_str_from(code));
        sl__sbuf_lit(&body, ", \"message\": ");
        sl__sbuf_json(&body, sl_str_from(message));
        sl__sbuf_lit(&body, ", \"request_id\": ");
        sl__sbuf_json(&body, sl_str_from(req->id));
        sl__sbuf_lit(&body, "}\n");
    }

    /* No body at all (code NULL: a preflight's 204) has no type either, and
     * a 204 or 304 no Content-Length (RFC 9110 8.6). */
    rh = (struct sl_resp_head){
        .status = status,
        .content_type = code != NULL ? "application/json" : NULL,
        .content_length = status == 204 || status == 304 ? -1 : (int64_t)body.len,
        .length_known = true,
        .no_body = req->method == HTTP_HEAD || status == 204 || status == 304,
        .date = true,
    };
    req->down->head(req, &rh);
    if (!rh.no_body && body.len > 0)
        req->down->body(req, NULL, body.p, body.len);
    sl__sbuf_free(&body);
    req->down->done(req);
}
