/*
 * sluice - what plugins can see and do to a request.
 *
 * A struct sl_req lives from the first byte of a request head to the end of
 * its response on one worker loop. Strings returned here are borrowed: they
 * stay valid until the request ends unless a function says otherwise. Values
 * handed in are copied into the request arena.
 */
#ifndef SLUICE_REQ_H
#define SLUICE_REQ_H

#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

#include "sluice/arena.h"
#include "sluice/str.h"

struct sl_req;
struct sl_plugin;

/* What a phase handler tells the core. */
enum sl_status {
    SL_NEXT = 0,   /* carry on with the next handler */
    SL_DONE = 1,   /* the handler answered with sl_req_respond(); stop */
    SL_AGAIN = 2,  /* suspended with sl_req_suspend(); sl_req_resume() follows */
    SL_ERROR = -1, /* internal failure: the core answers 500 */
};

/* The request line and head, as the client sent them (path normalised). */
struct sl_str sl_req_method(const struct sl_req *req);
struct sl_str sl_req_path(const struct sl_req *req);  /* without the query */
struct sl_str sl_req_query(const struct sl_req *req); /* after '?', may be empty */

/*
 * The value of the first query parameter called name ("a=1&name=v&b" gives
 * "v"; "" for a bare "name"), or {NULL, 0}: decoded as a form is (%XX, '+'
 * for a space; a copy in the request arena when there was anything to
 * decode, and {NULL, 0} too when that is full). Names are compared decoded,
 * as the backends will read them (access%5Ftoken is access_token), here
 * and in sl_req_query_param_remove().
 */
struct sl_str sl_req_query_param(struct sl_req *req, const char *name);

/*
 * Remove every query parameter called name from the request that goes
 * upstream (a token or an API key sent in the URL). Returns how many went,
 * or -1 when the capped request arena is full.
 */
int sl_req_query_param_remove(struct sl_req *req, const char *name);
struct sl_str sl_req_host(const struct sl_req *req); /* lower case, no port */
bool sl_req_is_tls(const struct sl_req *req);

/* The first value of a request header; {NULL, 0} if absent. */
struct sl_str sl_req_header(const struct sl_req *req, const char *name);

/* The value of the line number nth (from 0) called name, {NULL, 0} past
 * the last: every line of a list header (Accept-Encoding, Cache-Control). */
struct sl_str sl_req_header_nth(const struct sl_req *req, const char *name, unsigned nth);

/* How many lines of the request head are called name (any case). */
unsigned sl_req_header_count(const struct sl_req *req, const char *name);

/*
 * Replace every header called name with one holding value (or remove them
 * all when value is NULL) in what goes upstream. Returns 0, or -1 when the
 * capped request arena is full.
 */
int sl_req_header_set(struct sl_req *req, const char *name, const char *value);

/* Add one more line called name to what goes upstream, after the others
 * (a client's lines of that name stay). Returns 0, or -1 when the capped
 * request arena is full. */
int sl_req_header_add(struct sl_req *req, const char *name, const char *value);

/* The client's address as text ("192.0.2.1" or "2001:db8::1"). */
const char *sl_req_client_ip(const struct sl_req *req);
const struct sockaddr *sl_req_client_addr(const struct sl_req *req);

/*
 * The address that identifies the client for per-client limits: the peer,
 * or, when the peer is one of the config's trusted_proxies, the right-most
 * X-Forwarded-For address that is not.
 */
const char *sl_req_real_ip(struct sl_req *req);

/* The request id (X-Request-Id), or "" before the request_id plugin ran. */
const char *sl_req_id(const struct sl_req *req);
int sl_req_set_id(struct sl_req *req, struct sl_str id);

/*
 * The request's value of a key read with sl_conf_key() (sluice/conf.h): the
 * client's address as sl_req_real_ip() gives it, the route's name, the
 * first value of a header, a cookie's value, the claim a token plugin
 * left in the request variable "jwt:CLAIM", or any request variable
 * ("consumer", "var:NAME"). {NULL, 0} when the header, cookie, claim or
 * variable is missing (the caller decides what stands in).
 */
struct sl_key;
struct sl_str sl_req_key(struct sl_req *req, const struct sl_key *k);

/* Name of the matched route. */
const char *sl_req_route(const struct sl_req *req);

/*
 * Request variables: named values one plugin leaves for others, for the
 * plugins after it and for keys (sl_req_key()). Those set today:
 * "jwt:CLAIM" (jwt, oauth_introspection: each verified claim that is a
 * string or a number) and "consumer" (api_key: the consumer's name).
 * Setting one again replaces it. sl_req_var() returns {NULL, 0} when
 * unset.
 */
int sl_req_var_set(struct sl_req *req, const char *name, struct sl_str value);
struct sl_str sl_req_var(const struct sl_req *req, const char *name);

/* Per-request state of plugin p: NULL until set. Set it to something in the
 * request arena (or something the plugin frees in its LOG handler). */
void *sl_req_ctx(const struct sl_req *req, const struct sl_plugin *p);
int sl_req_set_ctx(struct sl_req *req, const struct sl_plugin *p, void *ctx);

/* The request arena (capped): memory that lives until the request ends. */
struct sl_arena *sl_req_arena(struct sl_req *req);

/* The loop the request runs on, for timers and async I/O. */
uv_loop_t *sl_req_loop(struct sl_req *req);

/* This worker's state for plugin p (what its worker_init() returned). */
void *sl_req_worker_data(struct sl_req *req, const struct sl_plugin *p);

/*
 * Answer the request from the gateway: status with the JSON body
 * {"error": code, "message": message, "request_id": ...}, or, with code
 * and message NULL, with no body at all (a CORS preflight's 204). Call it
 * from an ACCESS handler and return SL_DONE. Returns 0 or -1.
 */
int sl_req_respond(struct sl_req *req, int status, const char *code, const char *message);

/*
 * Add a header to the response the client will get, whether proxied or made
 * by the gateway. Returns 0, or -1 when the request arena is full or the
 * core writes that field itself (see sl_resp_header_remove()).
 */
int sl_resp_header_add(struct sl_req *req, const char *name, const char *value);

/* In the RESPONSE phase: the status and a header of the response (its
 * first value: the upstream's, or else one a plugin added). */
int sl_resp_status(const struct sl_req *req);
struct sl_str sl_resp_header(const struct sl_req *req, const char *name);
/* Line number nth (from 0) called name, as sl_req_header_nth() does. */
struct sl_str sl_resp_header_nth(const struct sl_req *req, const char *name, unsigned nth);

/*
 * In the RESPONSE phase: remove every field called name (any case) from
 * the response, the upstream's and those plugins added; set is remove then
 * add. The fields the core writes itself are left alone: the framing
 * (Content-Length, Transfer-Encoding, Connection; a plugin changes the
 * framing with a body filter), and, on an answer the gateway makes, its
 * Content-Type and Date. Return 0, or -1 when the arena is full or name
 * is one of those.
 */
int sl_resp_header_remove(struct sl_req *req, const char *name);
int sl_resp_header_set(struct sl_req *req, const char *name, const char *value);

/* The response comes from an upstream (false: the gateway made it). */
bool sl_resp_proxied(const struct sl_req *req);

/*
 * The upstream the request goes to: by default the route's, or the one an
 * UPSTREAM handler chose with sl_req_set_upstream(), given as an index
 * from sl_conf_upstream() (sluice/conf.h). Returns 0, or -1 for an index
 * the request's config does not have.
 */
const char *sl_req_upstream(const struct sl_req *req);
int sl_req_set_upstream(struct sl_req *req, unsigned index);

/*
 * Response body filters. A RESPONSE handler may route the body of a
 * proxied response that has one (not HEAD, 204, 304 or 101) through a
 * filter: sl_resp_body_filter() returns 0, or -1 when this response cannot
 * be filtered (made by the gateway, no body, SL_BODY_FILTERS_MAX already,
 * the arena full). From then on the response has no Content-Length (the
 * core drops it; the body goes chunked to an HTTP/1.1 client and is
 * delimited by the close for HTTP/1.0), and the body's bytes go to
 * f->body() in order, as they arrive, instead of to the client.
 *
 * body() passes on what it makes with sl_resp_body_write(), to the next
 * filter (filters run in plugin order) or to the client. flags:
 *   SL_BODY_FLUSH  the upstream has nothing more for now: write out what
 *                  the filter holds (a compressor's sync flush), so that a
 *                  streamed response keeps moving;
 *   SL_BODY_END    the body ends with these bytes (len may be 0): write
 *                  the rest. Nothing follows.
 * It returns 0, or -1 when it cannot go on (the client's connection is
 * then cut, as when an upstream breaks off mid-body). Backpressure is the
 * core's: it stops reading the upstream while the client's queue is above
 * its high mark, so a filter that writes about what it is given (and
 * keeps a bounded state) never holds a whole body.
 *
 * done(state), if set, runs exactly once when the request ends, however it
 * ends (complete, client gone, upstream broken): free the state there.
 */
#define SL_BODY_FLUSH       1u
#define SL_BODY_END         2u
#define SL_BODY_FILTERS_MAX 4

struct sl_body_filter {
    int (*body)(struct sl_req *req, void *state, const char *p, size_t len, unsigned flags);
    void (*done)(void *state);
};

int sl_resp_body_filter(struct sl_req *req, const struct sl_body_filter *f, void *state);
int sl_resp_body_write(struct sl_req *req, const char *p, size_t len);

/*
 * Suspension. An ACCESS handler that must wait calls sl_req_suspend() and
 * returns SL_AGAIN. Exactly one of two things then happens: the plugin calls
 * sl_req_resume() with what the handler would have returned, or, if the
 * client goes away first, the core calls cancel(arg) on the request's loop,
 * after which the plugin must forget the request and never resume it.
 */
typedef void sl_req_cancel_fn(void *arg);
void sl_req_suspend(struct sl_req *req, sl_req_cancel_fn *cancel, void *arg);
void sl_req_resume(struct sl_req *req, enum sl_status status);

/*
 * A field for the access log line ("ratelimit", "auth"); value is copied.
 * Every field set is written, after the core's own (a field named like one
 * of those is not). Never a token, secret or cookie.
 */
int sl_req_log_field(struct sl_req *req, const char *name, const char *value);

/*
 * Count one event of a plugin's counter series (struct sl_counter in
 * sluice/plugin.h) for the request's route, with value (one of the
 * series' values; any other is not counted) for its own label:
 * sl_req_count(req, &decisions, "allowed"). Lock-free: the worker's own
 * counter.
 */
struct sl_counter;
void sl_req_count(struct sl_req *req, const struct sl_counter *c, const char *value);

#endif
