/*
 * Workers: one thread and one libuv loop each. Every worker listens on every
 * listener through its own SO_REUSEPORT socket, so the kernel spreads
 * connections and nothing on the request path takes a lock.
 */
#ifndef SL_WORKER_H
#define SL_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

struct sl_gen;
struct sl_conn;
struct sl_pools;
struct sl_wlistener;

/*
 * A worker's hold on a generation. Requests count themselves here instead of
 * touching the generation's shared atomic refcount, so starting a request
 * costs no atomic write; the worker holds one real reference per handle.
 */
struct sl_wgen {
    struct sl_gen *gen;
    uint32_t users;
    struct sl_wgen *next;
};

struct sl_worker {
    uint32_t id;
    char name[16]; /* "w0": in error-log lines */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wakeup; /* main -> worker: stop, reload */
    uv_check_t flush;  /* once per loop turn: flush the access log */
    uv_timer_t stop_timer;
    uv_timer_t tick; /* refreshes the cached Date header */

    struct sl_wgen *wgen; /* the newest generation this worker has seen */
    struct sl_wgen *old;  /* older ones still used by requests */

    struct sl_wlistener *listeners; /* one per listen address */

    struct sl_bufpool bufs;
    struct sl_pools *pools; /* upstream keep-alive pools */
    struct sl_wmetrics *metrics;
    void **plugin_data; /* per plugin id, from worker_init() */

    struct sl_conn *conns; /* every client connection, for shutdown */
    uint32_t n_conns;

    char *alog; /* access-log lines not yet written */
    size_t alog_len, alog_cap;

    char date[40]; /* "Date: ...\r\n" text, refreshed every second */
    atomic_bool stop_requested;
    atomic_bool reload_requested;
    int stopping; /* 0 running, 1 finishing requests, 2 closing its handles */
    int ready;    /* 1 once listening, -errno if it failed to start */
};

/*
 * What the layer above (HTTP) does at a worker's moments, as nginx's
 * ls->handler hands an accepted connection on: installed once by main with
 * sl__workers_set_hooks() before any worker starts. Each runs on the
 * worker's loop unless it says otherwise; none may be NULL.
 */
struct sl_tls_server;
struct sl_worker_hooks {
    /* Main thread, before the worker's thread starts: its state (pools,
     * counters). */
    void (*init)(struct sl_worker *w);
    /* A connection is waiting on server; tls is the listener's, or NULL. */
    void (*accept)(struct sl_worker *w, uv_stream_t *server, struct sl_tls_server *tls);
    /* Once per loop turn (buffered log lines go out). */
    void (*turn)(struct sl_worker *w);
    /* A graceful stop began: listeners are closed; let what runs finish. */
    void (*drain)(struct sl_worker *w);
    /* shutdown_timeout passed with connections left: end them now. */
    void (*deadline)(struct sl_worker *w);
    /* The last connection is gone: close the handles the layer holds. */
    void (*stop)(struct sl_worker *w);
    /* On the worker's thread, its loop done: free what the layer keeps
     * per thread. */
    void (*thread_done)(struct sl_worker *w);
    /* Main thread, after the thread ended: free what init() made. */
    void (*fini)(struct sl_worker *w);
};

void sl__workers_set_hooks(const struct sl_worker_hooks *hooks);

/* Number of connections accepted and not yet closed, all workers together. */
extern atomic_uint sl__conn_count;

/*
 * Create listener sockets for gen (SO_REUSEPORT, one per worker per address),
 * reusing the sockets of addresses that were already open. Main thread.
 * Returns 0, or a negative errno with *why naming the address.
 */
int sl__listeners_prepare(struct sl_gen *gen, uint32_t n_workers, char *why, size_t why_len);

/* Start n workers on the current generation and wait until they listen. */
int sl__workers_start(uint32_t n);

/* Tell every worker to pick up the current generation's listeners. */
void sl__workers_reload(void);

/*
 * Begin a graceful stop without waiting: every worker stops accepting and
 * lets its connections finish (requests in flight, requests a throttle
 * holds, WebSockets and other tunnels) for up to shutdown_timeout, then
 * closes the rest. done (may be NULL) is sent once, from the last worker
 * thread to end, when every worker's loop is over; sl__workers_stop() then
 * joins them at once. Main thread.
 */
void sl__workers_stop_begin(uv_async_t *done);

/* A second stop signal: every worker closes its connections now, as when
 * shutdown_timeout ends (beginning the stop if it had not begun). Main
 * thread; returns at once. */
void sl__workers_stop_now(void);

/* Graceful stop: stop accepting, finish requests, join the threads. */
void sl__workers_stop(void);

/* The worker running on this thread (NULL on the main thread). */
struct sl_worker *sl__worker_self(void);

/* Acquire the current generation for a new request; release it when done. */
struct sl_wgen *sl__worker_gen_acquire(struct sl_worker *w);
void sl__worker_gen_release(struct sl_worker *w, struct sl_wgen *wg);

/* A connection closed: the worker may finish stopping. */
void sl__worker_conn_gone(struct sl_worker *w);

#endif
