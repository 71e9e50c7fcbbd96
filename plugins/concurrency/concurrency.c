/*
 * concurrency plugin: at most `max` requests of a route in flight at once on
 * this gateway instance; up to `queue` more wait (FIFO, whatever worker they
 * arrived on) at most `queue_timeout` for a slot, then get 503 with
 * Retry-After.
 *
 * The count is per route name and outlives config generations, so a reload
 * does not reset it. A slot freed on one worker is handed to the oldest
 * waiter directly (it never becomes free in between, so nobody can jump the
 * queue) and that waiter's worker is woken with uv_async_send().
 */
#include "concurrency.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/log.h"

struct waiter;

/* One route's slots, shared by all workers. */
struct route_slots {
    struct route_slots *next;
    uv_mutex_t lock;
    uint32_t inflight;
    uint32_t queued;
    struct waiter *head, *tail; /* FIFO */
    char name[];
};

/* Per worker: where granted waiters are handed over, and the wake-up. */
struct cc_worker {
    uv_async_t wake;
    uv_mutex_t lock;
    struct waiter *granted;
};

enum wstate { W_QUEUED, W_GRANTED, W_GONE };

struct waiter {
    struct waiter *next; /* in the route's FIFO, then in a worker's granted list */
    struct sl_req *req;  /* NULL once the client went away */
    struct route_slots *rs;
    struct cc_worker *w;
    uv_timer_t timer;  /* queue_timeout, on the waiter's loop */
    enum wstate state; /* under rs->lock */
};

/* Per request: whether it holds a slot (released in LOG). */
struct cc_req {
    struct route_slots *rs;
    struct waiter *waiter;
    bool holding;
};

static struct route_slots *routes;
static uv_rwlock_t routes_lock;
static uv_once_t routes_once = UV_ONCE_INIT;

static void init_routes(void)
{
    uv_rwlock_init(&routes_lock);
}

static struct route_slots *slots_for(const char *name)
{
    struct route_slots *r;
    size_t len = strlen(name);

    uv_once(&routes_once, init_routes);
    uv_rwlock_rdlock(&routes_lock);
    for (r = routes; r != NULL && strcmp(r->name, name) != 0; r = r->next)
        ;
    uv_rwlock_rdunlock(&routes_lock);
    if (r != NULL)
        return r;
    uv_rwlock_wrlock(&routes_lock);
    for (r = routes; r != NULL && strcmp(r->name, name) != 0; r = r->next)
        ;
    if (r == NULL) {
        r = sl_calloc(1, sizeof(*r) + len + 1, "the concurrency plugin");
        memcpy(r->name, name, len + 1);
        uv_mutex_init(&r->lock);
        r->next = routes;
        routes = r;
    }
    uv_rwlock_wrunlock(&routes_lock);
    return r;
}

static void waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

static void waiter_done(struct waiter *wt)
{
    uv_timer_stop(&wt->timer);
    uv_close((uv_handle_t *)&wt->timer, waiter_closed);
}

/* Give a freed slot to the oldest waiter, or count it free. Called with
 * rs->lock held. */
static void pass_slot(struct route_slots *rs)
{
    struct waiter *wt = rs->head;

    if (wt == NULL) {
        rs->inflight--;
        return;
    }
    rs->head = wt->next;
    if (rs->head == NULL)
        rs->tail = NULL;
    rs->queued--;
    wt->state = W_GRANTED; /* the slot is its now: inflight is unchanged */
    uv_mutex_lock(&wt->w->lock);
    wt->next = wt->w->granted;
    wt->w->granted = wt;
    uv_mutex_unlock(&wt->w->lock);
    uv_async_send(&wt->w->wake);
}

/* A worker's granted waiters resume (or, if their client left, pass on). */
static void on_wake(uv_async_t *a)
{
    struct cc_worker *w = a->data;
    struct waiter *list;

    uv_mutex_lock(&w->lock);
    list = w->granted;
    w->granted = NULL;
    uv_mutex_unlock(&w->lock);
    while (list != NULL) {
        struct waiter *wt = list;

        list = wt->next;
        if (wt->req == NULL) {
            /* Gone after being granted: the slot goes on to the next. */
            uv_mutex_lock(&wt->rs->lock);
            pass_slot(wt->rs);
            uv_mutex_unlock(&wt->rs->lock);
        } else {
            struct cc_req *cr = sl_req_ctx(wt->req, &sl_plugin_concurrency);

            cr->holding = true;
            cr->waiter = NULL;
            sl_req_log_field(wt->req, "concurrency", "queued");
            sl_req_resume(wt->req, SL_NEXT);
        }
        waiter_done(wt);
    }
}

/* Take a queued waiter out of the line. Called with rs->lock held. */
static void unqueue(struct route_slots *rs, struct waiter *wt)
{
    struct waiter **pp, *prev = NULL;

    for (pp = &rs->head; *pp != NULL && *pp != wt; pp = &(*pp)->next)
        prev = *pp;
    if (*pp != NULL) {
        *pp = wt->next;
        if (rs->tail == wt)
            rs->tail = prev;
        rs->queued--;
    }
    wt->state = W_GONE;
}

static void on_queue_timeout(uv_timer_t *t)
{
    struct waiter *wt = t->data;
    struct route_slots *rs = wt->rs;
    struct sl_req *req = wt->req;
    bool timed_out = false;

    uv_mutex_lock(&rs->lock);
    if (wt->state == W_QUEUED) {
        unqueue(rs, wt);
        timed_out = true;
    }
    uv_mutex_unlock(&rs->lock);
    if (!timed_out)
        return; /* granted meanwhile: on_wake() resumes it */
    {
        struct cc_req *cr = sl_req_ctx(req, &sl_plugin_concurrency);

        cr->waiter = NULL;
    }
    waiter_done(wt);
    sl_req_log_field(req, "concurrency", "queue_timeout");
    sl_resp_header_add(req, "Retry-After", "1");
    sl_req_respond(req, 503, "concurrency_limited",
                   "too many requests in flight for this route; try again");
    sl_req_resume(req, SL_DONE);
}

/* The client left while waiting in the queue. */
static void cancel(void *arg)
{
    struct cc_req *cr = arg;
    struct waiter *wt = cr->waiter;
    struct route_slots *rs = cr->rs;

    if (wt == NULL)
        return;
    cr->waiter = NULL;
    uv_mutex_lock(&rs->lock);
    wt->req = NULL;
    if (wt->state == W_QUEUED) {
        unqueue(rs, wt);
        uv_mutex_unlock(&rs->lock);
        waiter_done(wt);
        return;
    }
    /* Granted and on its way to on_wake(), which passes the slot on. */
    uv_mutex_unlock(&rs->lock);
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct cc_conf *c = conf;
    struct cc_req *cr = sl_arena_calloc(sl_req_arena(req), sizeof(*cr));
    struct route_slots *rs;
    struct waiter *wt;

    if (cr == NULL || sl_req_set_ctx(req, &sl_plugin_concurrency, cr) != 0)
        return SL_ERROR;
    cr->rs = rs = slots_for(sl_req_route(req));
    uv_mutex_lock(&rs->lock);
    if (rs->inflight < c->max && rs->head == NULL) {
        rs->inflight++;
        uv_mutex_unlock(&rs->lock);
        cr->holding = true;
        return SL_NEXT;
    }
    if (rs->queued >= c->queue || c->queue_timeout_ms == 0) {
        uv_mutex_unlock(&rs->lock);
        sl_req_log_field(req, "concurrency", "rejected");
        sl_resp_header_add(req, "Retry-After", "1");
        sl_req_respond(req, 503, "concurrency_limited",
                       "too many requests in flight for this route; try again");
        return SL_DONE;
    }
    wt = sl_calloc(1, sizeof(*wt), "the concurrency plugin");
    wt->req = req;
    wt->rs = rs;
    wt->w = sl_req_worker_data(req, &sl_plugin_concurrency);
    wt->state = W_QUEUED;
    if (rs->tail)
        rs->tail->next = wt;
    else
        rs->head = wt;
    rs->tail = wt;
    rs->queued++;
    uv_mutex_unlock(&rs->lock);
    cr->waiter = wt;
    uv_timer_init(sl_req_loop(req), &wt->timer);
    wt->timer.data = wt;
    uv_timer_start(&wt->timer, on_queue_timeout, c->queue_timeout_ms, 0);
    sl_req_suspend(req, cancel, cr);
    return SL_AGAIN;
}

static void on_log(struct sl_req *req, void *conf)
{
    struct cc_req *cr = sl_req_ctx(req, &sl_plugin_concurrency);

    (void)conf;
    if (cr == NULL || !cr->holding)
        return;
    cr->holding = false;
    uv_mutex_lock(&cr->rs->lock);
    pass_slot(cr->rs);
    uv_mutex_unlock(&cr->rs->lock);
}

static void *worker_init(uv_loop_t *loop)
{
    struct cc_worker *w = sl_calloc(1, sizeof(*w), "the concurrency plugin");
    uv_mutex_init(&w->lock);
    uv_async_init(loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_unref((uv_handle_t *)&w->wake); /* it must not keep a stopping worker alive */
    return w;
}

static void worker_closed(uv_handle_t *h)
{
    struct cc_worker *w = h->data;

    uv_mutex_destroy(&w->lock);
    free(w);
}

static void worker_fini(void *wdata)
{
    struct cc_worker *w = wdata;

    /* Slots granted to waiters whose clients left must go on to others
     * still waiting on workers that have not stopped yet. */
    on_wake(&w->wake);
    uv_close((uv_handle_t *)&w->wake, worker_closed);
}

static unsigned id;

const struct sl_plugin sl_plugin_concurrency = {
    .abi = SL_PLUGIN_ABI,
    .name = "concurrency",
    .id = &id,
    .conf_parse = sl__concurrency_conf_parse,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = on_access,
    .log = on_log,
};
