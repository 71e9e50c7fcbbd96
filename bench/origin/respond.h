/*
 * sluice-origin's responses: the head, generated or in-memory bodies sent
 * plain or chunked, and what the query asks of them (?status, ?delay,
 * ?close, ?reset, ?reset_after, ?hang).  Everything here runs on the loop
 * of the worker that owns the connection.
 */
#ifndef ORIGIN_RESPOND_H
#define ORIGIN_RESPOND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct conn;
struct resp;

/* A length that is not known: no Content-Length, and for resp.cut no reset. */
#define NO_LEN UINT64_MAX

/* Fill the pattern that generated bodies are cut from.  Call once in main
 * before any worker starts. */
void respond_init(void);

/* Start a new response in r, freeing the body the previous one owned. */
void resp_reset(struct resp *r);

/* True for the statuses whose responses never carry a body (204, 304). */
bool bodyless(int status);

/* Send the head of c's response: status, ctype (a static string) and a
 * Content-Length of clen, or NO_LEN for none (then, unless c->resp is
 * chunked, the body ends with the connection), plus the ?header= fields.
 * Built in the worker's scratch buffer, which is free again on return. */
void send_head(struct conn *c, int status, const char *ctype, uint64_t clen);

/* Send n body bytes from p.  stable: p stays valid until written (static
 * memory or the response's own), so it is not copied.  When chunked,
 * start (non-zero) opens a chunk of that size and end closes the current
 * one. */
void body_out(struct conn *c, const char *p, size_t n, bool stable, size_t start, bool end);

/* The body of c's response is all out: terminate it, then close c or,
 * when parsing was paused, resume with the pipelined requests. */
void finish(struct conn *c);

/* Hand more of c's body to libuv while its write queue is short; on_write
 * calls again as the queue drains.  Ends with finish(), or with a reset
 * once ?reset_after bytes are out. */
void pump(struct conn *c);

/* Decide the body for the request just completed on c (any route but
 * /echo and /ws); respond() sends it, now or after ?delay. */
void prepare(struct conn *c);

/* Send the response prepare() decided, or reset or hang c as the query
 * asked. */
void respond(struct conn *c);

/* c->timer callback for ?delay, with the connection in t->data: respond(). */
void on_delay(uv_timer_t *t);

/* Refuse the current request with c->err (400 when unset), or close c when
 * its response has started. */
void reject(struct conn *c);

#endif
