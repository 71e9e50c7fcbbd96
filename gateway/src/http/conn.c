/*
 * Client connections.
 *
 * Reading: bytes land in the connection's pooled read buffer and are parsed
 * in place by llhttp. The parser pauses when a head is complete (the request
 * must be routed and may wait for plugins and an upstream connection) and
 * when a message is complete (the next pipelined request waits for this
 * response). While paused, reading goes on until the buffer is full, so a
 * client that goes away is noticed.
 *
 * What is read is parsed and checked by request_parse.c.
 */
#include "http/conn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/gen.h"
#include "base/log.h"
#include "http/finish.h"
#include "http/proxy.h"
#include "http/request_parse.h"
#include "http/respond.h"
#include "tls/tls.h"
#include "http/tunnel.h"
#include "base/util.h"
#include "core/worker.h"

/* Read only when at least this much room is left in the read buffer. */
#define MIN_READ 4096
/* How long a closing connection reads and discards what the client still sends. */
#define LINGER_MS 2000

static void close_now(struct sl_conn *c);
static void drop_request(struct sl_conn *c);
static void on_timer(uv_timer_t *t);

const struct sl_config *sl__conn_conf(const struct sl_conn *c)
{
    if (c->rx != NULL && c->rx->req.gen != NULL)
        return c->rx->req.gen->conf;
    return c->w->wgen->gen->conf;
}

void sl__conn_set_deadline(struct sl_conn *c, uint64_t ms)
{
    uint64_t now = uv_now(&c->w->loop);

    if (ms == 0) {
        c->deadline = 0;
        return;
    }
    c->deadline = now + ms;
    /* Arm the timer only when it would fire too late; a timer that fires
     * early just re-arms for the rest (see on_timer). */
    if (c->timer_at == 0 || c->timer_at > c->deadline) {
        c->timer_at = c->deadline;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

static bool may_enter(enum sl_conn_state from, enum sl_conn_state to)
{
    if (from == to)
        return from != SL_CS_CLOSING && from != SL_CS_TUNNEL;
    switch (from) {
    case SL_CS_IDLE:
        return to == SL_CS_HEAD || to == SL_CS_CLOSING;
    case SL_CS_HEAD:
        return to == SL_CS_WAIT || to == SL_CS_IDLE || to == SL_CS_CLOSING;
    case SL_CS_WAIT:
        return to != SL_CS_HEAD;
    case SL_CS_BODY:
        return to == SL_CS_RESPONSE || to == SL_CS_IDLE || to == SL_CS_TUNNEL ||
               to == SL_CS_CLOSING;
    case SL_CS_RESPONSE:
        return to == SL_CS_IDLE || to == SL_CS_TUNNEL || to == SL_CS_CLOSING;
    case SL_CS_TUNNEL:
        return to == SL_CS_CLOSING;
    default:
        return false; /* CLOSING is the end */
    }
}

void sl__conn_enter(struct sl_conn *c, enum sl_conn_state to)
{
    SL_BUG_ON(!may_enter(c->state, to));
    c->state = to;
}

void sl__conn_upstream_backpressure(struct sl_conn *c, bool on)
{
    if (c->upstream_bp == on)
        return;
    c->upstream_bp = on;
    if (c->state == SL_CS_BODY)
        sl__conn_set_deadline(c, on ? 0 : sl__conn_conf(c)->client_body_ms);
    sl__conn_update_reading(c);
}

void sl__conn_nodelay(struct sl_conn *c)
{
    if (!c->nodelay) {
        uv_tcp_nodelay(&c->tcp, 1);
        c->nodelay = true;
    }
}

void sl__conn_hold_output(struct sl_conn *c, uint64_t ms)
{
    uint64_t at = uv_now(&c->w->loop) + ms;

    c->out_held = true;
    if (c->timer_at == 0 || c->timer_at > at) {
        c->timer_at = at;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

/* -- reading ---------------------------------------------------------------- */

/* Room at the end of the read buffer for plaintext, which may mean moving
 * the unparsed bytes to a fresh buffer. */
static uv_buf_t plain_room(struct sl_conn *c)
{
    return sl__buf_room(&c->w->bufs, &c->rbuf, &c->rpos, MIN_READ);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    *out = plain_room(h->data);
}

static void on_eof(struct sl_conn *c)
{
    struct sl_req *req = sl__conn_req(c); /* NULL when idle */

    c->eof = true;
    switch (c->state) {
    case SL_CS_IDLE:
    case SL_CS_HEAD:
        sl__request_parse(c); /* parse what is left, then close */
        if (!c->closed && (c->state == SL_CS_IDLE || c->state == SL_CS_HEAD))
            sl__conn_close_graceful(c); /* after what is queued for it */
        break;
    case SL_CS_WAIT:
        /* A client may half-close after sending its request; but one that
         * is held by a plugin has gone, and frees its place at once. */
        if (req->suspended)
            sl__conn_abort(c);
        else
            sl__conn_update_reading(c);
        break;
    case SL_CS_BODY:
        sl__request_parse(c);
        if (!c->closed && c->state == SL_CS_BODY) {
            req->action = "reading client request body";
            sl_log(SL_LOG_INFO, req, "client closed the connection before the body was complete");
            sl__conn_abort(c);
        }
        break;
    case SL_CS_RESPONSE:
        sl__conn_update_reading(c);
        break;
    case SL_CS_TUNNEL:
        sl__tunnel_client_eof(c);
        break;
    case SL_CS_CLOSING:
        close_now(c);
        break;
    }
}

/* n bytes of plaintext were added to the read buffer. */
static void got_plain(struct sl_conn *c, size_t n)
{
    c->rbuf->len += (uint32_t)n;
    switch (c->state) {
    case SL_CS_CLOSING:
        c->rbuf->len = c->rpos; /* lingering: discard */
        return;
    case SL_CS_TUNNEL:
        sl__tunnel_client_data(c);
        return;
    case SL_CS_IDLE:
        sl__conn_enter(c, SL_CS_HEAD);
        sl__conn_set_deadline(c, sl__conn_conf(c)->client_header_ms);
        break;
    case SL_CS_BODY:
        sl__conn_set_deadline(c, sl__conn_conf(c)->client_body_ms);
        break;
    default:
        break;
    }
    sl__request_parse(c);
}

static void read_failed(struct sl_conn *c, const char *why)
{
    if (c->state != SL_CS_IDLE && c->state != SL_CS_CLOSING)
        sl_log(SL_LOG_INFO, c->rx != NULL && c->rx->req.gen ? &c->rx->req : NULL,
               "client connection error: %s", why);
    sl__conn_abort(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_conn *c = s->data;

    (void)buf;
    if (nread > 0) {
        got_plain(c, (size_t)nread);
        return;
    }
    /* Nothing came (EAGAIN, EOF, an error): the buffer libuv asked for goes
     * back at once, not when the connection is freed, or 10,000 idle
     * clients leaving together hold 10,000 buffers for a moment. */
    sl__conn_trim_idle(c);
    if (nread == UV_EOF)
        on_eof(c);
    else if (nread < 0)
        read_failed(c, uv_strerror((int)nread));
}

/* -- TLS ---------------------------------------------------------------------- */

static bool want_read(const struct sl_conn *c)
{
    uint32_t unparsed = c->rbuf ? c->rbuf->len - c->rpos : 0;

    if (c->closed)
        return false;
    if (c->state == SL_CS_CLOSING)
        return c->shut && !c->eof;
    return !c->eof && !c->upstream_bp && unparsed + MIN_READ <= SL_BUF_SIZE;
}

/*
 * A fatal TLS error from the client: a failed handshake, a bad record MAC, an
 * oversized record, a bad KeyUpdate. OpenSSL has left its alert in the
 * ciphertext output, and RFC 8446 section 5 says it must be sent; closing at
 * once would drop it (uv_close() cancels writes still in libuv's queue), and
 * so would a reset if the client's unread bytes were still in our socket.
 * So the request ends now, plaintext that can no longer be encrypted goes,
 * and the close is graceful: the alert is flushed, the FIN follows it once
 * it is out (on_written), and the lingering close reads and drops what the
 * client still sends. Its deadlines bound all of this.
 */
static void tls_failed(struct sl_conn *c, const char *what)
{
    if (c->rx != NULL && c->rx->req.gen != NULL)
        sl_log(SL_LOG_INFO, &c->rx->req, "%s: %s", what, c->ssl->error);
    else {
        char ip[48];

        sl__addr_str(&c->peer.sa, false, ip, sizeof(ip));
        sl_log(SL_LOG_INFO, NULL, "%s: %s, client: %s", what, c->ssl->error, ip);
    }
    if (c->state == SL_CS_CLOSING) {
        close_now(c); /* lingering: our FIN is out, nothing more can be sent */
        return;
    }
    drop_request(c);
    if (c->tls_wg != NULL) { /* no handshake to finish: the config may go */
        sl__worker_gen_release(c->w, c->tls_wg);
        c->tls_wg = NULL;
    }
    sl__out_discard_plain(&c->out);
    sl__conn_close_graceful(c);
}

/* Run the handshake, then decrypt as much as the read buffer takes. */
static void tls_pump(struct sl_conn *c)
{
    struct sl_tls *t = c->ssl;

    if (c->pumping)
        return;
    if (t->failed) {
        sl__tls_discard_input(t); /* a lingering close after an alert */
        return;
    }
    c->pumping = true;
    if (!t->done) {
        int r = sl__tls_handshake(t);

        sl__out_flush_raw(&c->out);
        if (r < 0) {
            tls_failed(c, "TLS handshake failed");
            goto out;
        }
        if (r == 0)
            goto out;
        if (c->tls_wg != NULL) { /* SNI is settled: the config may go */
            sl__worker_gen_release(c->w, c->tls_wg);
            c->tls_wg = NULL;
        }
    }
    while (want_read(c)) {
        uv_buf_t room = plain_room(c);
        int n = sl__tls_read(t, room.base, room.len);

        if (n > 0) {
            got_plain(c, (size_t)n);
            continue;
        }
        if (n == SL_TLS_EOF) {
            on_eof(c);
        } else if (n < 0) {
            tls_failed(c, "TLS error from the client");
        }
        break;
    }
    if (!c->closed)
        sl__out_flush_raw(&c->out);
out:
    c->pumping = false;
}

static void on_alloc_tls(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct sl_conn *c = h->data;

    (void)suggested;
    sl__tls_alloc(c->ssl, out);
}

static void on_read_tls(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_conn *c = s->data;

    (void)buf;
    if (nread > 0) {
        sl__tls_received(c->ssl, (size_t)nread);
        tls_pump(c);
        return;
    }
    sl__conn_trim_idle(c); /* as on_read() does */
    if (nread == UV_EOF)
        on_eof(c);
    else if (nread < 0)
        read_failed(c, uv_strerror((int)nread));
}

void sl__conn_update_reading(struct sl_conn *c)
{
    bool want = want_read(c);

    if (want && !c->reading) {
        int rc = c->ssl ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc_tls, on_read_tls)
                        : uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);

        if (rc == 0)
            c->reading = true;
        /* Ciphertext already received, or plaintext OpenSSL still holds
         * from a record we only partly read, may be what the reader needs. */
        if (c->ssl != NULL && sl__tls_has_input(c->ssl))
            tls_pump(c);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* -- writing and closing ---------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct sl_conn *c = sr->data;

    if (c->closed)
        return;
    if (c->state == SL_CS_TUNNEL) {
        c->shut = true; /* the tunnel's other side ended: ours follows */
        return;
    }
    if (status < 0 || c->eof) {
        close_now(c);
        return;
    }
    /* Read and discard what the client still sends for a moment, so that a
     * reset does not destroy the response before the client has read it. */
    c->shut = true;
    sl__conn_set_deadline(c, LINGER_MS);
    sl__conn_update_reading(c);
}

static void start_shutdown(struct sl_conn *c)
{
    if (c->shut || c->closed || c->shutdown_req != NULL)
        return;
    /* The client said it was done (Connection: close, or HTTP/1.0) and
     * everything it sent was read: nothing can arrive to make the close a
     * reset, so the response's last bytes are safe behind a plain close
     * (nginx lingers only when a client may still be sending, too). Saves
     * a shutdown, a read and two epoll_ctl calls per connection. */
    if (c->no_linger && c->ssl == NULL) {
        close_now(c);
        return;
    }
    /* After a fatal error OpenSSL must not be asked for a close_notify: its
     * alert was the last record. */
    if (c->ssl != NULL && c->ssl->done && !c->ssl->failed) {
        SSL_shutdown(c->ssl->ssl); /* close_notify, written before the FIN */
        sl__out_flush_raw(&c->out);
    }
    /* Only a closing connection needs one: not a part of every connection
     * (freed with the connection). */
    c->shutdown_req = sl__xmalloc(sizeof(*c->shutdown_req));
    c->shutdown_req->data = c;
    if (uv_shutdown(c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        close_now(c);
}

static void on_written(void *arg)
{
    struct sl_conn *c = arg;
    struct sl_req *req = sl__conn_req(c);

    if (c->closed)
        return;
    if (c->out.error != 0) {
        if (req != NULL && req->gen != NULL && !req->finished && req->head_done) {
            req->action = "sending the response to the client";
            sl_log(SL_LOG_INFO, req, "client write failed: %s", uv_strerror(c->out.error));
        }
        sl__conn_abort(c);
        return;
    }
    if (req != NULL && req->up != NULL && sl__out_queued(&c->out) <= SL_OUT_LOW)
        sl__proxy_client_drained(req);
    if (req != NULL && c->state == SL_CS_TUNNEL)
        sl__tunnel_maybe_end(req);
    if (c->state == SL_CS_CLOSING && c->out.pending == 0)
        start_shutdown(c);
}

static void on_timer(uv_timer_t *t)
{
    struct sl_conn *c = t->data;
    uint64_t now = uv_now(&c->w->loop);
    struct sl_req *req = sl__conn_req(c);

    c->timer_at = 0;
    if (c->out_held && !c->closed) {
        c->out_held = false; /* what a body did not join goes out alone */
        if (sl__out_flush(&c->out) != 0) {
            sl__conn_abort(c);
            return;
        }
    }
    if (c->closed || c->deadline == 0)
        return;
    if (now < c->deadline) {
        c->timer_at = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    c->deadline = 0;
    switch (req != NULL ? c->state : SL_CS_IDLE) {
    case SL_CS_HEAD:
        if (req->gen == NULL)
            sl__req_init(req, c);
        req->action = "reading client request head";
        sl_log(SL_LOG_INFO, req,
               "client sent no complete request head within timeouts.client_header");
        req->keepalive = false;
        sl__respond_error(req, 408, "request_timeout", "the request head was not received in time");
        break;
    case SL_CS_BODY:
        req->action = "reading client request body";
        sl_log(SL_LOG_INFO, req, "client body timed out (timeouts.client_body)");
        if (!req->resp_started) {
            sl__proxy_abort(req);
            req->keepalive = false;
            sl__respond_error(req, 408, "request_timeout",
                              "the request body was not received in time");
        } else {
            sl__conn_abort(c);
        }
        break;
    case SL_CS_RESPONSE:
        req->action = "sending the response to the client";
        sl_log(SL_LOG_INFO, req, "client took no response bytes within timeouts.client_send");
        close_now(c);
        break;
    default:
        close_now(c); /* idle keep-alive, lingering close */
        break;
    }
}

static void on_closed(uv_handle_t *h)
{
    struct sl_conn *c = h->data;
    struct sl_worker *w = c->w;

    if (h == (uv_handle_t *)&c->tcp) {
        uv_close((uv_handle_t *)&c->timer, on_closed);
        return;
    }
    sl__out_discard(&c->out);
    if (c->rbuf != NULL)
        sl__buf_unref(c->rbuf);
    if (c->ssl != NULL) {
        sl__tls_free(c->ssl);
        free(c->ssl);
    }
    sl__conn_rx_release(c);
    free(c->shutdown_req);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    atomic_fetch_sub(&sl__conn_count, 1);
    free(c);
    sl__worker_conn_gone(w);
}

/* End the connection's request, if it has one: the client goes away, or is
 * sent away, before its response is complete. */
static void drop_request(struct sl_conn *c)
{
    struct sl_req *req = sl__conn_req(c);

    if (req == NULL)
        return;
    if (req->gen != NULL) {
        if (req->suspended)
            sl__req_cancel(req);
        sl__proxy_abort(req);
        if (req->head_done && !req->finished) {
            /* The client went away before its response was complete. */
            req->finished = true;
            if (req->status == 0 || !req->resp_started)
                req->status = 499;
            sl__req_finish(req);
        }
        sl__req_release(req);
    }
    sl__head_free(&req->head);
}

static void close_now(struct sl_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    drop_request(c);
    if (c->tls_wg != NULL) {
        sl__worker_gen_release(c->w, c->tls_wg);
        c->tls_wg = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void sl__conn_abort(struct sl_conn *c)
{
    close_now(c);
}

void sl__conn_shutdown_write(struct sl_conn *c)
{
    start_shutdown(c);
}

void sl__conn_close_graceful(struct sl_conn *c)
{
    if (c->closed)
        return;
    if (c->state == SL_CS_CLOSING)
        return;
    if (c->shutdown_req != NULL) {
        close_now(c); /* a tunnel that already shut its side down */
        return;
    }
    sl__conn_enter(c, SL_CS_CLOSING);
    if (c->reading && !c->no_linger) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    sl__conn_set_deadline(c, LINGER_MS * 5); /* a cap on flushing to a slow client */
    if (sl__out_flush(&c->out) != 0) {
        close_now(c);
        return;
    }
    if (c->out.pending == 0)
        start_shutdown(c);
}

void sl__conn_request_done(struct sl_conn *c)
{
    struct sl_req *req = &c->rx->req;
    bool keep, body_pending = !req->body_done;

    if (req->finished || c->closed)
        return;
    req->finished = true;
    /* Flush first: bytes_out counts what was handed to the socket. */
    if (sl__out_flush(&c->out) != 0) {
        close_now(c);
        return;
    }
    sl__req_finish(req);
    sl__proxy_release(req);

    /* A bodiless request answered before llhttp saw its end is complete;
     * one with an unread body cannot be followed by another request. */
    if (body_pending && !req->has_body && !req->upgrade && c->state != SL_CS_BODY)
        body_pending = false;
    /* After an Upgrade request that did not become a tunnel, llhttp expects
     * raw bytes on this connection: no further request can be parsed. */
    keep = req->keepalive && !body_pending && !req->upgrade && !c->w->stopping &&
           c->state != SL_CS_CLOSING && c->state != SL_CS_TUNNEL &&
           (!c->eof || (c->rbuf && c->rpos < c->rbuf->len));
    c->requests++;
    if (!keep) {
        c->no_linger = !body_pending && req->body_done && !req->upgrade &&
                       (c->rbuf == NULL || c->rpos == c->rbuf->len);
        sl__req_release(req);
        sl__head_free(&req->head);
        sl__conn_close_graceful(c);
        return;
    }
    /* Responses to come on this connection must not wait for Nagle. */
    sl__conn_nodelay(c);
    llhttp_resume(&c->rx->parser);
    if (!req->body_done) {
        /* Paused at the head of a bodiless message: llhttp still owes its
         * on_message_complete, which sees req->finished and releases it. */
        c->rx->exec_start = c->rbuf ? c->rbuf->data + c->rpos : "";
        llhttp_execute(&c->rx->parser, c->rx->exec_start, 0);
    } else {
        /* Paused at the end of the message; the next one may be buffered. */
        sl__req_release(req);
    }
    sl__conn_enter(c, SL_CS_IDLE);
    sl__head_reset(&req->head);
    sl__conn_set_deadline(c, sl__conn_conf(c)->client_idle_ms);
    sl__request_parse(c);
    sl__conn_trim_idle(c);
}

void sl__conn_trim_idle(struct sl_conn *c)
{
    /* An idle connection owns no memory beyond itself (nginx's lazy
     * buffers): the read buffer goes back to the worker's pool when nothing
     * is left in it, and so does the parser and request (with its head's
     * buffer and arena chunk). They come back when the next bytes do. */
    if (c->closed || c->state != SL_CS_IDLE)
        return;
    if (c->ssl != NULL) {
        /* Nothing undecrypted, nothing decrypted and unread; then the
         * ciphertext buffer goes too (OpenSSL's own record buffers go with
         * SSL_MODE_RELEASE_BUFFERS). */
        if (sl__tls_has_input(c->ssl))
            return;
        sl__tls_trim(c->ssl);
    }
    if (c->rbuf != NULL && c->rpos == c->rbuf->len) {
        sl__buf_unref(c->rbuf);
        c->rbuf = NULL;
        c->rpos = 0;
    }
    if (c->rx != NULL && c->rx->req.gen == NULL)
        sl__conn_rx_release(c);
}

void sl__conn_start_body(struct sl_conn *c)
{
    struct sl_req *req = &c->rx->req;

    if (c->closed)
        return;
    if (req->body_done) {
        /* A retry: the message was complete before the first attempt. */
        sl__conn_enter(c, SL_CS_RESPONSE);
        return;
    }
    if (req->expect_continue) {
        sl__out_copy(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        sl__out_flush(&c->out);
    }
    sl__conn_enter(c, SL_CS_BODY);
    req->body_started = true;
    req->action = "sending the request body upstream";
    if (req->has_body)
        sl__conn_set_deadline(c, sl__conn_conf(c)->client_body_ms);
    llhttp_resume(&c->rx->parser);
    sl__request_parse(c);
}

void sl__conn_stop(struct sl_conn *c)
{
    if (c->closed)
        return;
    if (c->state == SL_CS_IDLE && (c->rbuf == NULL || c->rpos == c->rbuf->len))
        close_now(c);
    /* Busy connections close after their current response (request_done
     * sees the worker stopping) or when the shutdown timeout ends. */
}

/* -- accepting -------------------------------------------------------------- */

static void reject_cb(uv_handle_t *h)
{
    free(h);
}

/* Refuse a connection over limits.max_connections: one 503 written with a
 * non-blocking try, then close. */
static void refuse(struct sl_conn *c, uint32_t max)
{
    static atomic_uint_fast64_t seq;
    char body[200], resp[512];
    uv_buf_t b;
    int blen, rlen;

    blen = snprintf(body, sizeof(body),
                    "{\"error\": \"too_many_connections\", \"message\": \"limits.max_connections "
                    "(%u) reached\", \"request_id\": \"refused-%llx\"}\n",
                    max, (unsigned long long)atomic_fetch_add(&seq, 1));
    rlen = snprintf(resp, sizeof(resp),
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s",
                    blen, body);
    b = uv_buf_init(resp, (unsigned)rlen);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    uv_close((uv_handle_t *)&c->tcp, reject_cb);
}

void sl__conn_accept(struct sl_worker *w, uv_stream_t *server, struct sl_tls_server *tls)
{
    const struct sl_config *conf = w->wgen->gen->conf;
    struct sl_conn *c = sl__xcalloc(1, sizeof(*c));
    int len = sizeof(c->peer);

    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, reject_cb);
        return;
    }
    if (atomic_fetch_add(&sl__conn_count, 1) >= conf->max_connections) {
        atomic_fetch_sub(&sl__conn_count, 1);
        sl_log(SL_LOG_WARN, NULL, "limits.max_connections (%u) reached: refusing a connection",
               conf->max_connections);
        refuse(c, conf->max_connections);
        return;
    }
    c->w = w;
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
    sl__out_init(&c->out, (uv_stream_t *)&c->tcp, &w->bufs, on_written, c);
    if (tls != NULL) {
        /* Before the timer exists: on failure only the TCP handle has to
         * be closed, and its callback may free the connection. */
        c->ssl = sl__xcalloc(1, sizeof(*c->ssl));
        if (sl__tls_accept(c->ssl, tls, &c->out, &w->bufs) != 0) {
            char ip[48];

            sl__addr_str(&c->peer.sa, false, ip, sizeof(ip));
            sl_log(SL_LOG_ERROR, NULL, "cannot start TLS for a connection from %s", ip);
            free(c->ssl);
            c->ssl = NULL;
            atomic_fetch_sub(&sl__conn_count, 1);
            uv_close((uv_handle_t *)&c->tcp, reject_cb);
            return;
        }
        c->tls = true;
        /* The SNI callback uses the generation's TLS config: hold it until
         * the handshake is done. */
        c->tls_wg = sl__worker_gen_acquire(w);
    }
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    sl__conn_enter(c, SL_CS_IDLE);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    sl__conn_set_deadline(c, conf->client_header_ms);
    sl__conn_update_reading(c);
}
