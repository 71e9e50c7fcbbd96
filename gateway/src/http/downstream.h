/*
 * A request's client side, as the proxy, the gateway's own responses and
 * (through sluice/req.h) the plugins see it: send the response head, body
 * chunks and the end with its trailers, forward an interim 1xx, pause and
 * resume reading the request body, abort. What goes on the wire is the
 * implementation's business: HTTP/1.1 (http/h1.c, on the connection of
 * http/conn.c) decides chunking, close-delimiting and the Connection header
 * today; an HTTP/2 stream will be a second implementation carrying many
 * requests on one connection, with nothing changed in the proxy, the
 * upstream side or any plugin (h2o's generator/ostream split and nginx's
 * r->connection vs r->stream are the models).
 *
 * Every operation runs on the request's loop. The upgrade to a tunnel
 * (WebSocket, http/tunnel.c) is an HTTP/1.1 matter and is not part of it.
 */
#ifndef SL_HTTP_DOWNSTREAM_H
#define SL_HTTP_DOWNSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/str.h"

struct sl_req;
struct sl_buf;
struct sl_head;

/* What a response head says, whatever the protocol that carries it. */
struct sl_resp_head {
    int status;
    struct sl_str reason;         /* the upstream's phrase (checked), or empty: the standard one */
    const struct sl_head *fields; /* fields to forward (those not marked drop), or NULL */
    struct sl_str via;            /* the value of the Via field to add, or empty */
    const char *content_type;     /* a gateway-made body's type, or NULL */
    int64_t content_length;       /* a gateway-made body's length, or -1 */
    bool length_known;            /* the length is known: in fields or content_length */
    bool no_body;                 /* HEAD, 204, 304, 101: nothing follows the head */
    bool upgrade;                 /* 101 Switching Protocols */
    bool date;                    /* add Date (the gateway's own responses) */
};

struct sl_downstream {
    /* The final response head, with the plugins' extra headers
     * (sl_resp_header_add()); the RESPONSE phase has run. Marks the
     * response started. */
    void (*head)(struct sl_req *req, const struct sl_resp_head *h);
    /* An interim 1xx response (not 101): an implementation drops it where
     * its protocol has none (HTTP/1.0). Marks the response started when
     * sent. */
    void (*interim)(struct sl_req *req, const struct sl_resp_head *h);
    /* Body bytes: p lies in b (a reference is taken), or b is NULL and the
     * bytes are copied. */
    void (*body)(struct sl_req *req, struct sl_buf *b, const char *p, size_t len);
    /* The body is complete; trailers (the fields after h->trailers_from of
     * the upstream's head), or NULL. */
    void (*end)(struct sl_req *req, const struct sl_head *trailers);
    /* Send what is queued: now, or, with hold, once a body chunk joins a
     * head that came alone (at most a moment later). 0, or -1 when the
     * client is gone (the exchange is then aborted). */
    int (*flush)(struct sl_req *req, bool hold);
    /* Bytes queued towards the client and not yet taken. */
    size_t (*queued)(const struct sl_req *req);
    /* The upstream side waits for the client to take bytes (on), or no
     * longer does (off): the client is held to timeouts.client_send. */
    void (*stalled)(struct sl_req *req, bool on);
    /* Stop and resume reading the request body (the upstream is slow). */
    void (*pause)(struct sl_req *req);
    void (*resume)(struct sl_req *req);
    /* The exchange is over (the response is complete); the client side may
     * take the next request. */
    void (*done)(struct sl_req *req);
    /* End the exchange abruptly: part of a response is out and the rest
     * cannot follow. */
    void (*abort)(struct sl_req *req);
};

#endif
