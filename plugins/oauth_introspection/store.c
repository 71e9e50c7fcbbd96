/*
 * oauth_introspection plugin: the process-wide table of answers and calls.
 *
 * Entries are found through a chained hash of the token (sl_hash(), seeded
 * once per process) and compared whole, with the ident of the IdP and
 * client that asked. They are also on an age list, oldest first, so a full
 * table forgets its oldest answers (never a call in flight). All of it is
 * under one mutex, held only to look up, insert and hand outcomes over: a
 * call's answer is parsed before the lock is taken.
 *
 * A waiter is on exactly one list at a time (OI_ON_ENTRY: its entry's, while
 * the call runs; OI_READY: its worker's, once the outcome is in it), so the
 * client leaving takes it off wherever it is, under the same mutex.
 */
#include "store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/alloc.h"
#include "sluice/fetch.h"
#include "sluice/log.h"
#include "sluice/str.h"

#include "answer.h"

#define NBUCKETS 32768 /* a power of two, above the entries */

enum { OI_NOWHERE, OI_ON_ENTRY, OI_READY };

struct oi_entry {
    struct oi_entry *hnext;         /* the bucket's chain */
    struct oi_entry *older, *newer; /* the age list */
    uint64_t hash, ident;
    char *token;
    size_t len;
    char *endpoint; /* for the log */
    bool pending;
    /* pending: the call, the worker it runs on, who waits for it */
    struct sl_fetch *fetch;
    struct oi_worker *owner;
    struct oi_wait *waiters;
    struct oi_times times;
    /* done: the answer and until when it holds */
    struct oi_outcome out;
    double until;
    bool kept; /* counted in count */
};

struct oi_worker {
    uv_loop_t *loop;
    uv_async_t wake;
    struct oi_wait *ready; /* outcomes to hand to their requests */
    struct oi_worker *next;
};

static uv_once_t once = UV_ONCE_INIT;
static uv_mutex_t lock;
static struct oi_entry **buckets;
static struct oi_entry *oldest, *newest;
static size_t count;     /* answers kept */
static size_t in_flight; /* calls running */
static struct oi_worker *workers;
static uint64_t seed;

static atomic_uint_fast64_t calls[3]; /* by enum oi_kind */

static void init(void);

/* Release an outcome's claims. Under the lock: the claims of a kept answer
 * are shared by every worker, and jansson's reference count is not read
 * atomically everywhere (json_decref's test for a static value). */
void sl__oi_outcome_clear(struct oi_outcome *o)
{
    if (o->claims == NULL)
        return;
    uv_once(&once, init);
    uv_mutex_lock(&lock);
    json_decref(o->claims);
    uv_mutex_unlock(&lock);
    o->claims = NULL;
}

/* The same, with the lock held. */
static void clear_locked(struct oi_outcome *o)
{
    json_decref(o->claims);
    o->claims = NULL;
}

static void init(void)
{
    uv_mutex_init(&lock);
    buckets = sl_calloc(NBUCKETS, sizeof(*buckets), "the introspection cache");
    seed = sl_hash_seed();
}

static struct oi_entry **bucket(uint64_t h)
{
    return &buckets[h & (NBUCKETS - 1)];
}

static void push(struct oi_wait **list, struct oi_wait *wt)
{
    wt->prev = NULL;
    wt->next = *list;
    if (*list != NULL)
        (*list)->prev = wt;
    *list = wt;
}

static void unlink_wait(struct oi_wait **list, struct oi_wait *wt)
{
    if (wt->prev != NULL)
        wt->prev->next = wt->next;
    else
        *list = wt->next;
    if (wt->next != NULL)
        wt->next->prev = wt->prev;
    wt->prev = wt->next = NULL;
}

/* Take e out of the table (under the lock); the caller frees it. */
static void remove_entry(struct oi_entry *e)
{
    struct oi_entry **pp = bucket(e->hash);

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        newest = e->older;
    if (e->kept)
        count--;
}

/* Free an entry out of the table; its answer's claims were released under
 * the lock already (clear_locked). */
static void free_entry(struct oi_entry *e)
{
    free(e->token);
    free(e->endpoint);
    free(e);
}

/* Forget the oldest answers while the table is over its size (under the
 * lock); calls in flight stay. */
static void evict(void)
{
    struct oi_entry *e = oldest;

    while (count > OI_STORE_ENTRIES && e != NULL) {
        struct oi_entry *next = e->newer;

        if (!e->pending) {
            remove_entry(e);
            clear_locked(&e->out);
            free_entry(e);
        }
        e = next;
    }
}

/* Hand o to every waiter of e, on its own worker (under the lock). */
static void hand_over(struct oi_entry *e, const struct oi_outcome *o)
{
    while (e->waiters != NULL) {
        struct oi_wait *wt = e->waiters;

        unlink_wait(&e->waiters, wt);
        wt->out = *o;
        if (o->claims != NULL)
            json_incref(o->claims);
        wt->entry = NULL;
        wt->where = OI_READY;
        push(&wt->w->ready, wt);
        uv_async_send(&wt->w->wake);
    }
}

static void log_failure(const struct oi_entry *e, const struct sl_fetch_result *r,
                        const struct oi_outcome *o)
{
    if (r->error != NULL)
        sl_log(SL_LOG_WARN, NULL, "oauth_introspection: %s: %s", e->endpoint, r->error);
    else
        sl_log(SL_LOG_WARN, NULL, "oauth_introspection: %s: %s (HTTP %d)", e->endpoint, o->why,
               r->status);
}

/* A call ended (on its owner's loop): keep the answer, wake the waiters. */
static void called(void *arg, const struct sl_fetch_result *r)
{
    struct oi_entry *e = arg;
    double until = 0;
    struct timespec ts;
    struct oi_outcome o;
    bool keep;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (r->error != NULL)
        o = (struct oi_outcome){.kind = OI_FAILED,
                                .why = "the introspection endpoint cannot be reached"};
    else
        o = sl__oi_answer(r->status, r->body, r->body_len,
                          (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, &e->times, &until);
    atomic_fetch_add(&calls[o.kind], 1);
    if (o.kind == OI_FAILED)
        log_failure(e, r, &o);
    uv_mutex_lock(&lock);
    in_flight--;
    e->fetch = NULL;
    e->owner = NULL;
    e->pending = false;
    hand_over(e, &o);
    keep = until > 0;
    if (keep) {
        e->out = o;
        e->until = until;
        e->kept = true;
        count++;
        evict();
    } else {
        remove_entry(e);
        clear_locked(&o);
    }
    uv_mutex_unlock(&lock);
    if (!keep)
        free_entry(e);
}

static struct oi_entry *find(uint64_t h, uint64_t ident, const char *token, size_t len)
{
    for (struct oi_entry *e = *bucket(h); e != NULL; e = e->hnext)
        if (e->hash == h && e->ident == ident && e->len == len && memcmp(e->token, token, len) == 0)
            return e;
    return NULL;
}

/* A new entry for a call about to start (under the lock), newest. */
static struct oi_entry *add(struct oi_worker *w, const struct oi_call *c, uint64_t h,
                            const char *token, size_t len)
{
    struct oi_entry *e = sl_calloc(1, sizeof(*e), "the introspection cache");
    struct oi_entry **b = bucket(h);

    e->hash = h;
    e->ident = c->ident;
    e->token = sl_malloc(len ? len : 1, "the introspection cache");
    memcpy(e->token, token, len);
    e->len = len;
    e->endpoint = sl_strdup(c->endpoint, "the introspection cache");
    e->pending = true;
    e->owner = w;
    e->times = c->times;
    e->hnext = *b;
    *b = e;
    e->older = newest;
    if (newest != NULL)
        newest->newer = e;
    else
        oldest = e;
    newest = e;
    in_flight++;
    return e;
}

/* Start e's call on w's loop; a call that cannot start fails its waiters
 * at once (on their loops: never from inside the lookup). */
static void start(struct oi_worker *w, struct oi_entry *e, const struct oi_call *c)
{
    size_t n;
    char *body = sl__oi_form_body(e->token, e->len, &n);
    struct sl_fetch_opts o = {.method = "POST",
                              .url = c->endpoint,
                              .ca_file = c->ca_file,
                              .headers = c->headers,
                              .body = body,
                              .body_len = n,
                              .timeout_ms = c->timeout_ms,
                              .max_body = 256 * 1024};
    struct sl_fetch *f = sl_fetch(w->loop, &o, called, e);

    free(body);
    uv_mutex_lock(&lock);
    if (f != NULL) {
        e->fetch = f;
        uv_mutex_unlock(&lock);
        return;
    }
    in_flight--;
    hand_over(
        e, &(struct oi_outcome){.kind = OI_FAILED, .why = "the introspection call cannot start"});
    remove_entry(e);
    uv_mutex_unlock(&lock);
    atomic_fetch_add(&calls[OI_FAILED], 1);
    free_entry(e);
}

enum oi_found sl__oi_lookup(struct oi_worker *w, const struct oi_call *c, const char *token,
                            size_t len, double now, struct oi_wait *wt, struct oi_outcome *out)
{
    uint64_t h = sl_hash(seed, token, len);
    struct oi_entry *e, *gone = NULL;
    bool fresh = false;

    uv_mutex_lock(&lock);
    e = find(h, c->ident, token, len);
    if (e != NULL && !e->pending && !(now < e->until)) {
        remove_entry(e);
        clear_locked(&e->out);
        gone = e;
        e = NULL;
    }
    if (e != NULL && !e->pending) {
        *out = e->out;
        if (out->claims != NULL)
            json_incref(out->claims);
        uv_mutex_unlock(&lock);
        return OI_HIT;
    }
    if (e == NULL && in_flight >= OI_MAX_CALLS) {
        uv_mutex_unlock(&lock);
        if (gone != NULL)
            free_entry(gone);
        atomic_fetch_add(&calls[OI_FAILED], 1);
        sl_log(SL_LOG_WARN, NULL,
               "oauth_introspection: %d calls to the IdP already in flight; more new tokens get "
               "503 until they end",
               OI_MAX_CALLS);
        *out =
            (struct oi_outcome){.kind = OI_FAILED, .why = "too many introspection calls in flight"};
        return OI_HIT;
    }
    if (e == NULL) {
        e = add(w, c, h, token, len);
        fresh = true;
    }
    wt->w = w;
    wt->entry = e;
    wt->where = OI_ON_ENTRY;
    wt->out = (struct oi_outcome){0};
    push(&e->waiters, wt);
    uv_mutex_unlock(&lock);
    if (gone != NULL)
        free_entry(gone);
    if (fresh)
        start(w, e, c);
    return OI_WAIT;
}

void sl__oi_unwait(struct oi_wait *wt)
{
    uv_mutex_lock(&lock);
    if (wt->where == OI_ON_ENTRY)
        unlink_wait(&wt->entry->waiters, wt);
    else if (wt->where == OI_READY)
        unlink_wait(&wt->w->ready, wt);
    wt->where = OI_NOWHERE;
    wt->entry = NULL;
    uv_mutex_unlock(&lock);
    sl__oi_outcome_clear(&wt->out);
}

/* Hand this worker's outcomes to their requests, one at a time: a request
 * resumed may end another that is still on the list. */
static void on_wake(uv_async_t *a)
{
    struct oi_worker *w = a->data;

    for (;;) {
        struct oi_wait *wt;

        uv_mutex_lock(&lock);
        wt = w->ready;
        if (wt != NULL) {
            unlink_wait(&w->ready, wt);
            wt->where = OI_NOWHERE;
        }
        uv_mutex_unlock(&lock);
        if (wt == NULL)
            return;
        wt->done(wt);
    }
}

struct oi_worker *sl__oi_worker_new(uv_loop_t *loop)
{
    struct oi_worker *w = sl_calloc(1, sizeof(*w), "the oauth_introspection plugin");

    uv_once(&once, init);
    w->loop = loop;
    uv_async_init(loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_unref((uv_handle_t *)&w->wake);
    uv_mutex_lock(&lock);
    w->next = workers;
    workers = w;
    uv_mutex_unlock(&lock);
    return w;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void sl__oi_worker_free(struct oi_worker *w)
{
    static const struct oi_outcome gone = {.kind = OI_FAILED,
                                           .why = "the worker making the call stopped"};
    struct oi_entry *e, *next, *dead = NULL;

    if (w == NULL)
        return;
    uv_mutex_lock(&lock);
    for (struct oi_worker **pp = &workers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    for (e = oldest; e != NULL; e = next) {
        next = e->newer;
        if (!e->pending)
            continue;
        /* This worker's requests are gone by now (the core stops a worker
         * once its connections are), but a waiter must never outlive its
         * worker on another's entry. */
        for (struct oi_wait *wt = e->waiters, *wn; wt != NULL; wt = wn) {
            wn = wt->next;
            if (wt->w == w) {
                unlink_wait(&e->waiters, wt);
                wt->where = OI_NOWHERE;
                wt->entry = NULL;
            }
        }
        if (e->owner != w)
            continue;
        sl_fetch_cancel(e->fetch);
        in_flight--;
        atomic_fetch_add(&calls[OI_FAILED], 1);
        hand_over(e, &gone);
        remove_entry(e);
        e->hnext = dead;
        dead = e;
    }
    while (w->ready != NULL) {
        struct oi_wait *wt = w->ready;

        unlink_wait(&w->ready, wt);
        wt->where = OI_NOWHERE;
        clear_locked(&wt->out);
    }
    uv_mutex_unlock(&lock);
    for (e = dead; e != NULL; e = next) {
        next = e->hnext;
        free_entry(e);
    }
    uv_close((uv_handle_t *)&w->wake, on_closed);
}

void sl__oi_metrics(void (*emit)(void *ctx, const char *text), void *ctx)
{
    static const char *const names[] = {"active", "inactive", "failed"};
    char line[160];

    emit(ctx, "# HELP sluice_introspection_calls_total Token introspection calls to the IdP, by "
              "answer.\n# TYPE sluice_introspection_calls_total counter\n");
    for (int k = 0; k < 3; k++) {
        snprintf(line, sizeof(line), "sluice_introspection_calls_total{result=\"%s\"} %llu\n",
                 names[k], (unsigned long long)atomic_load(&calls[k]));
        emit(ctx, line);
    }
}
