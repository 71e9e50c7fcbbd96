/*
 * oauth_introspection plugin: what the IdP said about each token, shared by
 * every worker of the process, and the calls still running.
 *
 * One table per process, under one mutex, keyed by the token and by which
 * IdP and client asked (struct oi_call's ident: endpoint, client_id,
 * client_secret), so every route and every reload that asks the same IdP
 * shares its answers. An entry is either a call in flight, with the
 * requests waiting for it (on any worker), or an answer kept until its
 * time: an active token for min(cache_ttl, exp - now), an inactive one for
 * negative_ttl. A failed call (the IdP down, slow, answering 500) is never
 * kept: its waiters get the failure and the next request asks again.
 *
 * The first request for a token starts the call on its own worker's loop;
 * every request for the same token until the answer comes waits for that
 * one call. The answer reaches a waiter on its own loop (each worker has
 * an async handle and a ready list).
 */
#ifndef SL_PLUGIN_OI_STORE_H
#define SL_PLUGIN_OI_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Answers kept at most, for the whole process; the oldest go first. */
#define OI_STORE_ENTRIES 20000

/* Calls in flight at most, for the whole process: a flood of new tokens
 * gets 503 beyond this instead of a flood of calls to the IdP. */
#define OI_MAX_CALLS 256

enum oi_kind {
    OI_ACTIVE,   /* claims: the introspection answer */
    OI_INACTIVE, /* result and why say how */
    OI_FAILED,   /* the call failed: why */
};

struct oi_outcome {
    enum oi_kind kind;
    json_t *claims;     /* OI_ACTIVE: a reference for whoever holds the outcome */
    const char *result; /* OI_INACTIVE: "invalid" or "expired" */
    const char *why;    /* static text */
};

/* How long answers are kept, and the clock skew allowed for exp and nbf. */
struct oi_times {
    double cache_ttl_s;
    double negative_ttl_s;
    double leeway_s;
};

/* One IdP and client, as a config asks it. Everything is copied by a call. */
struct oi_call {
    /* A hash of everything below: only configs asking the same IdP the same
     * way (credentials, CA, timeout, how long answers hold) share answers
     * and calls, so no route ever gets an answer kept longer, or fetched
     * less carefully, than it asks. */
    uint64_t ident;
    const char *endpoint;
    const char *ca_file;
    const char *headers; /* Authorization: Basic ..., Content-Type, Accept */
    uint64_t timeout_ms;
    struct oi_times times;
};

struct oi_worker;

/* A request waiting for a call, in its request arena. done runs on w's
 * loop with out set (the waiter then owns out.claims), unless
 * sl__oi_unwait() ran first. */
struct oi_wait {
    struct oi_wait *prev, *next;
    struct oi_worker *w;
    struct oi_entry *entry; /* while waiting for its call */
    int where;              /* OI_NOWHERE, OI_ON_ENTRY, OI_READY */
    struct oi_outcome out;
    void (*done)(struct oi_wait *wt);
};

/* Release an outcome's claims (answer.c). */
void sl__oi_outcome_clear(struct oi_outcome *o);

enum oi_found {
    OI_HIT,  /* *out is the kept answer (with a reference), or a failure */
    OI_WAIT, /* wt waits for a call (started now on w's loop, maybe) */
};

/*
 * The kept answer for token (len bytes) from c's IdP, or queue wt for the
 * call that brings it, starting one on w's loop when none runs. now is Unix
 * time in seconds. Runs on w's loop.
 */
enum oi_found sl__oi_lookup(struct oi_worker *w, const struct oi_call *c, const char *token,
                            size_t len, double now, struct oi_wait *wt, struct oi_outcome *out);

/* The client left: wt's done never runs. On wt's worker's loop. */
void sl__oi_unwait(struct oi_wait *wt);

/* A worker's part: its wake-up and its ready list. Its calls in flight end
 * with it (their waiters elsewhere get a failure). On the worker's loop. */
struct oi_worker *sl__oi_worker_new(uv_loop_t *loop);
void sl__oi_worker_free(struct oi_worker *w);

/* sluice_introspection_calls_total{result}, for the plugin's metrics
 * callback (main thread). */
void sl__oi_metrics(void (*emit)(void *ctx, const char *text), void *ctx);

#endif
