/*
 * Gateway-made responses.
 */
#include "http/respond.h"

#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "http/conn.h"
#include "base/log.h"
#include "http/proxy.h"
#include "http/req.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "core/worker.h"

void sl__respond_status_line(struct sl_out *o, int status, const char *reason)
{
    sl__out_printf(o, "HTTP/1.1 %d %s\r\n", status, reason);
}

void sl__respond_date(struct sl_out *o)
{
    struct sl_worker *w = SL_CONTAINER_OF(o->pool, struct sl_worker, bufs);

    sl__out_copy(o, w->date, strlen(w->date));
}

void sl__respond_extra_headers(struct sl_out *o, struct sl_req *req)
{
    for (const struct sl_kv *kv = req->resp_extra; kv != NULL; kv = kv->next) {
        sl__out_copy(o, kv->name, strlen(kv->name));
        sl__out_copy(o, ": ", 2);
        sl__out_copy(o, kv->value.p, kv->value.len);
        sl__out_copy(o, "\r\n", 2);
    }
}

void sl__respond_error(struct sl_req *req, int status, const char *code, const char *message)
{
    struct sl_conn *c = req->conn;
    struct sl_out *o = &c->out;
    struct sl_sbuf body = {0};
    bool close;

    if (req->finished || c->closed)
        return;
    sl__proxy_abort(req); /* whatever the upstream was doing is moot */
    if (req->resp_started) {
        /* Part of a response is out: the only honest signal left is to cut
         * the connection. */
        sl__conn_abort(c);
        return;
    }
    req->status = status;
    req->error_code = code;
    req->resp_started = true;
    if (status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
        status == 505 || status == 417 || (req->has_body && !req->body_done) || !req->head_done ||
        req->upgrade)
        req->keepalive = false;
    close = !req->keepalive || c->w->stopping;

    sl__req_response_phase(req);

    sl__sbuf_lit(&body, "{\"error\": ");
    sl__sbuf_json(&body, sl_str_from(code));
    sl__sbuf_lit(&body, ", \"message\": ");
    sl__sbuf_json(&body, sl_str_from(message));
    sl__sbuf_lit(&body, ", \"request_id\": ");
    sl__sbuf_json(&body, sl_str_from(req->id));
    sl__sbuf_lit(&body, "}\n");

    sl__respond_status_line(o, status, sl__http_reason(status));
    sl__respond_date(o);
    sl__out_printf(o, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body.len);
    if (status == 401 && sl_resp_header(req, "WWW-Authenticate").p == NULL)
        sl__out_copy(o, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n", 48);
    sl__respond_extra_headers(o, req);
    if (close)
        sl__out_copy(o, "Connection: close\r\n", 19);
    else if (req->http_minor == 0)
        sl__out_copy(o, "Connection: keep-alive\r\n", 24);
    sl__out_copy(o, "\r\n", 2);
    if (req->method != HTTP_HEAD)
        sl__out_copy(o, body.p, body.len);
    sl__sbuf_free(&body);
    req->keepalive = !close;
    sl__conn_request_done(c);
}
