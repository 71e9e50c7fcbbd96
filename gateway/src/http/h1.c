/*
 * HTTP/1.1 as a request's downstream (http/downstream.h): the response on
 * the client connection of http/conn.c. This is where the wire framing is
 * decided: a body of unknown length is chunked for an HTTP/1.1 client and
 * delimited by the close for an HTTP/1.0 one, and one Connection header says
 * whether the connection stays (keep-alive for HTTP/1.0, close when it must
 * end, upgrade for a 101).
 */
#include "http/h1.h"

#include <string.h>

#include "base/buf.h"
#include "base/head.h"
#include "base/http.h"
#include "config/config.h"
#include "core/worker.h"
#include "http/conn.h"
#include "http/req.h"

/* How long a response head that came alone waits for its first body bytes,
 * to leave with them in one write (one TLS record). */
#define HOLD_HEAD_MS 1

static void status_line(struct sl_out *o, int status, struct sl_str reason)
{
    char *p = sl__out_reserve(o, 13);
    unsigned s = status >= 100 && status <= 999 ? (unsigned)status : 500;

    /* "HTTP/1.1 NNN ": llhttp takes three digits only. */
    memcpy(p, "HTTP/1.1 ", 9);
    p[9] = (char)('0' + s / 100);
    p[10] = (char)('0' + s / 10 % 10);
    p[11] = (char)('0' + s % 10);
    p[12] = ' ';
    /* llhttp lets control characters (NUL among them) through in the reason
     * phrase: such a reason is replaced, never passed on. */
    if (!(reason.len > 0 && sl__http_valid_value(reason)))
        reason = sl_str_from(sl__http_reason(status));
    p = sl__out_reserve(o, reason.len + 2);
    memcpy(p, reason.p, reason.len);
    memcpy(p + reason.len, "\r\n", 2);
}

/* The fields of h->fields not marked drop (nor Content-Length when
 * no_length: a chunked body or a 1xx), then Via. */
static void fields(struct sl_out *o, const struct sl_resp_head *h, bool no_length)
{
    const struct sl_head *f = h->fields;

    for (uint32_t i = 0; f != NULL && i < (f->in_trailers ? f->trailers_from : f->n); i++) {
        const struct sl_header *x = &f->fields[i];

        if (x->drop || x->name.len == 0)
            continue;
        if (no_length && sl_str_caseeq_lit(x->name, "Content-Length"))
            continue;
        sl__out_field(o, x->name, x->value);
    }
    if (h->via.len > 0)
        sl__out_field(o, SL_STR("Via"), h->via);
}

static void extra_headers(struct sl_out *o, const struct sl_req *req)
{
    for (const struct sl_kv *kv = req->resp_extra; kv != NULL; kv = kv->next)
        sl__out_field(o, sl_str_from(kv->name), kv->value);
}

static void head(struct sl_req *req, const struct sl_resp_head *h)
{
    struct sl_conn *c = req->conn;
    struct sl_out *o = &c->out;
    bool close;

    if (!h->no_body && !h->length_known) {
        if (req->http_minor >= 1)
            req->resp_chunked = true;
        else
            req->resp_until_close = true;
    }
    /* An Upgrade the upstream declined leaves llhttp expecting a tunnel on
     * this connection: it cannot carry another request. */
    close =
        !req->keepalive || req->resp_until_close || c->w->stopping || (req->upgrade && !h->upgrade);
    if (close)
        req->keepalive = false;

    status_line(o, h->status, h->reason);
    if (h->date)
        sl__out_copy(o, c->w->date, strlen(c->w->date));
    if (h->content_type != NULL)
        sl__out_field(o, SL_STR("Content-Type"), sl_str_from(h->content_type));
    if (h->content_length >= 0) {
        sl__out_copy(o, "Content-Length: ", 16);
        sl__out_uint(o, (uint64_t)h->content_length, 10);
        sl__out_copy(o, "\r\n", 2);
    }
    fields(o, h, req->resp_chunked);
    extra_headers(o, req);
    if (h->upgrade)
        sl__out_copy(o, "Connection: upgrade\r\n", 21);
    else if (req->resp_chunked)
        sl__out_copy(o, "Transfer-Encoding: chunked\r\n", 28);
    if (!h->upgrade) {
        if (close)
            sl__out_copy(o, "Connection: close\r\n", 19);
        else if (req->http_minor == 0)
            sl__out_copy(o, "Connection: keep-alive\r\n", 24);
    }
    sl__out_copy(o, "\r\n", 2);
    req->resp_started = true;
}

/* HTTP/1.0 knows no 1xx (RFC 9110 15.2): nothing for such a client. */
static void interim(struct sl_req *req, const struct sl_resp_head *h)
{
    struct sl_out *o = &req->conn->out;

    if (req->http_minor == 0)
        return;
    status_line(o, h->status, h->reason);
    fields(o, h, true);
    sl__out_copy(o, "\r\n", 2);
    req->resp_started = true;
}

static void body(struct sl_req *req, struct sl_buf *b, const char *p, size_t len)
{
    struct sl_out *o = &req->conn->out;

    if (req->resp_chunked) {
        sl__out_uint(o, len, 16);
        sl__out_copy(o, "\r\n", 2);
    }
    if (b != NULL)
        sl__out_slice(o, b, p, len);
    else
        sl__out_copy(o, p, len);
    if (req->resp_chunked)
        sl__out_copy(o, "\r\n", 2);
}

static void end(struct sl_req *req, const struct sl_head *trailers)
{
    if (req->resp_chunked)
        sl__head_end_chunked(&req->conn->out, trailers, NULL, NULL);
}

static int flush(struct sl_req *req, bool hold)
{
    struct sl_conn *c = req->conn;

    if (hold) {
        sl__conn_hold_output(c, HOLD_HEAD_MS);
        return 0;
    }
    /* A second write for this response: it streams. */
    if (sl__req_bytes_out(req) > 0)
        sl__conn_nodelay(c);
    if (sl__out_flush(&c->out) != 0) {
        sl__conn_abort(c);
        return -1;
    }
    return 0;
}

static size_t queued(const struct sl_req *req)
{
    return sl__out_queued(&req->conn->out);
}

static void stalled(struct sl_req *req, bool on)
{
    struct sl_conn *c = req->conn;

    /* While the request body still comes, client_body watches the client. */
    if (c->state != SL_CS_BODY)
        sl__conn_set_deadline(c, on ? sl__conn_conf(c)->client_send_ms : 0);
}

static void pause_body(struct sl_req *req)
{
    sl__conn_upstream_backpressure(req->conn, true);
}

static void resume_body(struct sl_req *req)
{
    sl__conn_upstream_backpressure(req->conn, false);
}

static void done(struct sl_req *req)
{
    sl__conn_request_done(req->conn);
}

static void abort_(struct sl_req *req)
{
    sl__conn_abort(req->conn);
}

const struct sl_downstream sl__h1_downstream = {
    .head = head,
    .interim = interim,
    .body = body,
    .end = end,
    .flush = flush,
    .queued = queued,
    .stalled = stalled,
    .pause = pause_body,
    .resume = resume_body,
    .done = done,
    .abort = abort_,
};
