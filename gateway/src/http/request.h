/*
 * The request: its parsed head, routing result, plugin progress, upstream
 * attempt and response state. One lives inside each client connection and is
 * reset between keep-alive requests; its arena is capped. Only the type: a
 * module that reads a request includes this, and the functions are in
 * http/req.h.
 */
#ifndef SL_HTTP_REQUEST_H
#define SL_HTTP_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/req.h"

#include "base/head.h"
#include "base/http.h"
#include "http/downstream.h"

struct sl_conn;
struct sl_upconn;
struct sl_wgen;
struct sl_gen;
struct sl_route_conf;
struct sl_upstream;
struct sl_target;
struct sl_tstate;
struct sl_filters;

struct sl_kv {
    const char *name;
    struct sl_str value;
    struct sl_kv *next;
};

struct sl_req {
    struct sl_conn *conn;
    const struct sl_downstream *down; /* the client side (http/downstream.h) */
    struct sl_wgen *wg;               /* the generation this request runs on */
    const struct sl_gen *gen;
    struct sl_arena arena;
    uint64_t start_ns;
    const char *action; /* what the gateway is doing, for error-log lines */

    /* The head as received. */
    struct sl_head head;
    int method;
    uint8_t http_minor;
    struct sl_str method_s;
    struct sl_str uri;      /* request-target as sent */
    struct sl_str path;     /* normalised */
    struct sl_str query;    /* as forwarded: plugins may remove parameters */
    bool query_rewritten;   /* so: an empty query goes without its '?' */
    struct sl_str host;     /* routing key: lower case, no port */
    struct sl_str host_hdr; /* as sent, forwarded upstream */
    uint64_t content_length;
    bool content_length_set; /* the client sent Content-Length */
    bool has_body;           /* Content-Length > 0 or chunked */
    bool chunked;
    bool expect_continue;
    bool upgrade;
    bool keepalive; /* the client allows another request after this one */
    bool head_done;
    bool body_done; /* the request message is complete */
    bool body_started;
    uint64_t body_bytes; /* request body bytes received */
    uint64_t head_bytes;

    /* Routing and plugins. */
    const struct sl_route_conf *route;
    size_t plugin_pos;
    bool suspended;
    bool in_handler;     /* inside an ACCESS handler call */
    bool resumed_inline; /* sl_req_resume() came before the handler returned */
    enum sl_status resume_status;
    const struct sl_plugin *suspended_by;
    sl_req_cancel_fn *cancel;
    void *cancel_arg;
    int pending_status; /* sl_req_respond(): sent once the handler is done */
    const char *pending_code;
    const char *pending_msg;
    struct sl_kv *vars;
    struct sl_kv *log_fields;
    struct sl_kv *resp_extra; /* headers plugins add to the response */
    void **plugin_ctx;        /* per plugin id: sl_req_ctx() */
    const char *real_ip;      /* sl_req_real_ip(), once computed */
    char real_ip_buf[48];
    char id[72];

    /* Upstream attempt. */
    struct sl_upstream *upstream;
    struct sl_target *target;
    struct sl_upconn *up;
    struct sl_tstate *inflight_st; /* the target whose in-flight count we hold */
    bool trial;                    /* this attempt is the target's trial after an ejection */
    bool stale_retried;            /* the one free retry after a stale pooled connection */
    bool fresh_connection;         /* the next attempt must not take a pooled connection */
    uint32_t tries;
    uint64_t tried[4]; /* bit per target index already tried (first 256) */
    uint64_t up_start_ns;
    uint64_t up_ms; /* time to the response head, for the log */

    /* Response. */
    int status;
    struct sl_head resp;   /* upstream response head (in the upconn's buffer) */
    bool resp_started;     /* response head sent to the client */
    bool resp_chunked;     /* we chunk the body to the client */
    bool resp_until_close; /* HTTP/1.0 client, unknown length: close delimits */
    bool resp_no_body;
    bool resp_proxied; /* the response head is an upstream's (sl_resp_proxied()) */
    struct sl_filters *filters; /* response body filters, or NULL (http/body_filter.c) */
    bool finished;
    uint64_t resp_body_bytes;
    uint64_t bytes_out_start; /* client out counter when the request began */
    const char *error_code;   /* gateway-made response: its code, for the log */
};

#endif
