/*
 * jwt plugin: the process-wide JWKS sources, their fetches and the
 * requests waiting for them.
 *
 * Locks: reg (the lists of sources and workers, and each source's refs)
 * is taken before a source's own lock, never after. A source's lock guards
 * its set pointer and fetch state, briefly: the request path takes it once
 * to get a reference to the set.
 */
#include "jwks_source.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/fetch.h"
#include "sluice/log.h"

#define TICK_MS          250
#define MAX_AGE_FLOOR_MS 30000
#define MAX_AGE_CEIL_MS  (24ull * 3600 * 1000)
/* Backoff after failures: 1 s doubling, up to the refresh interval with a
 * set to serve, up to 5 s without one (every request is failing then). */
#define BACKOFF_MS      1000
#define BACKOFF_COLD_MS 5000

struct jwks_source {
    struct jwks_source *next; /* in sources, under reg */
    unsigned refs;            /* configs and running fetches, under reg */
    char *url, *issuer, *ca_file, *label;
    bool discovery;
    uint64_t refresh_ms;
    bool refresh_set;

    uv_mutex_t lock; /* the rest, but for the atomics */
    struct jwks_set *set;
    bool in_flight;
    uint64_t next_due, last_kid_fetch; /* uv_hrtime() ms */
    unsigned failures;                 /* in a row */

    atomic_uint_fast64_t seq; /* fetches completed */
    atomic_uint_fast64_t ok, failed;
};

struct job {
    struct job *prev, *next; /* in the worker's jobs */
    struct jwks_source *src;
    struct jwks_worker *w;
    struct sl_fetch *f;
    bool discovering;
};

struct jwks_worker {
    struct jwks_worker *next; /* in workers, under reg */
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_async_t wake;
    struct jwks_wait *waiters;
    struct job *jobs;
    int open_handles;
};

static uv_once_t once = UV_ONCE_INIT;
static uv_mutex_t reg;
static struct jwks_source *sources;
static struct jwks_worker *workers;
static atomic_uint_fast64_t gens = 1;

static void reg_init(void)
{
    uv_mutex_init(&reg);
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static bool same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

struct jwks_source *sl__jwks_source_get(const char *url, bool discovery, const char *issuer,
                                        const char *ca_file, uint64_t refresh_ms, bool refresh_set)
{
    struct jwks_source *s;

    uv_once(&once, reg_init);
    uv_mutex_lock(&reg);
    for (s = sources; s != NULL; s = s->next)
        if (strcmp(s->url, url) == 0 && s->discovery == discovery && same(s->ca_file, ca_file))
            break;
    if (s == NULL) {
        s = sl_calloc(1, sizeof(*s), "the jwt plugin's JWKS source");
        s->url = sl_strdup(url, "the jwt plugin's JWKS source");
        s->issuer = issuer != NULL ? sl_strdup(issuer, "the jwt plugin's JWKS source") : NULL;
        s->ca_file = ca_file != NULL ? sl_strdup(ca_file, "the jwt plugin's JWKS source") : NULL;
        s->label = sl_strdup(discovery ? issuer : url, "the jwt plugin's JWKS source");
        s->discovery = discovery;
        s->refresh_ms = refresh_ms;
        s->refresh_set = refresh_set;
        uv_mutex_init(&s->lock);
        s->next = sources;
        sources = s;
    } else if (refresh_set) {
        /* finish() reads these under the source's lock. */
        uv_mutex_lock(&s->lock);
        if (!s->refresh_set || refresh_ms < s->refresh_ms)
            s->refresh_ms = refresh_ms;
        s->refresh_set = true;
        uv_mutex_unlock(&s->lock);
    }
    s->refs++;
    uv_mutex_unlock(&reg);
    return s;
}

void sl__jwks_source_put(struct jwks_source *s)
{
    struct jwks_source **pp;
    bool last;

    uv_mutex_lock(&reg);
    last = --s->refs == 0;
    for (pp = &sources; last && *pp != NULL; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    uv_mutex_unlock(&reg);
    if (!last)
        return;
    sl__jwks_set_unref(s->set);
    uv_mutex_destroy(&s->lock);
    free(s->url);
    free(s->issuer);
    free(s->ca_file);
    free(s->label);
    free(s);
}

struct jwks_set *sl__jwks_source_set(struct jwks_source *s)
{
    struct jwks_set *set;

    uv_mutex_lock(&s->lock);
    set = s->set != NULL ? sl__jwks_set_ref(s->set) : NULL;
    uv_mutex_unlock(&s->lock);
    return set;
}

/* Every worker looks at its waiters: a fetch completed. */
static void wake_all(void)
{
    uv_mutex_lock(&reg);
    for (struct jwks_worker *w = workers; w != NULL; w = w->next)
        uv_async_send(&w->wake);
    uv_mutex_unlock(&reg);
}

static void log_failure(struct jwks_source *s, const char *why, uint64_t retry_ms, bool has_set)
{
    sl_log(SL_LOG_WARN, NULL,
           "jwt: cannot refresh the keys of %s: %s; %s, retrying in %llu ms (logged once until "
           "a refresh succeeds)",
           s->label, why, has_set ? "the last good keys keep serving" : "no keys to serve yet",
           (unsigned long long)retry_ms);
}

/* A fetch of s ended with set (one reference, taken over) or NULL and why.
 * Runs on the loop that fetched; ends the job's reference to s. */
static void finish(struct jwks_source *s, struct jwks_set *set, const char *why, bool has_max_age,
                   uint64_t max_age_s)
{
    struct jwks_set *old = NULL;
    uint64_t now = now_ms(), next;
    unsigned failures;
    bool changed = false, first = false;
    size_t nkeys = 0;

    uv_mutex_lock(&s->lock);
    s->in_flight = false;
    failures = s->failures;
    if (set != NULL) {
        next = s->refresh_ms;
        if (has_max_age && !s->refresh_set) {
            next = max_age_s * 1000;
            next = next < MAX_AGE_FLOOR_MS  ? MAX_AGE_FLOOR_MS
                   : next > MAX_AGE_CEIL_MS ? MAX_AGE_CEIL_MS
                                            : next;
        }
        first = s->set == NULL;
        if (first || strcmp(s->set->fingerprint, set->fingerprint) != 0) {
            /* A new generation: cached tokens verified with the old keys
             * are not used again. */
            set->gen = atomic_fetch_add(&gens, 1);
            old = s->set;
            s->set = set;
            changed = true;
            nkeys = set->nkeys;
        } else {
            old = set; /* the same keys: keep the set (and the cache) we have */
        }
        s->failures = 0;
    } else {
        unsigned shift = s->failures < 6 ? s->failures : 6;
        uint64_t cap = s->set != NULL ? s->refresh_ms : BACKOFF_COLD_MS;

        next = (uint64_t)BACKOFF_MS << shift;
        next = next > cap ? cap : next;
        s->failures++;
    }
    s->next_due = now + next;
    bool has_set = s->set != NULL;
    uv_mutex_unlock(&s->lock);

    atomic_fetch_add(set != NULL ? &s->ok : &s->failed, 1);
    if (set == NULL && failures == 0)
        log_failure(s, why, next, has_set);
    else if (set != NULL && failures > 0)
        sl_log(SL_LOG_INFO, NULL, "jwt: the keys of %s are fetched again after %u failures",
               s->label, failures);
    if (changed)
        sl_log(SL_LOG_INFO, NULL, "jwt: %s %zu keys from %s", first ? "loaded" : "changed to",
               nkeys, s->label);
    sl__jwks_set_unref(old);
    atomic_fetch_add(&s->seq, 1);
    wake_all();
    sl__jwks_source_put(s);
}

static void job_end(struct job *j, struct jwks_set *set, const char *why, bool has_max_age,
                    uint64_t max_age_s)
{
    struct jwks_worker *w = j->w;

    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        w->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    finish(j->src, set, why, has_max_age, max_age_s);
    free(j);
}

static void on_fetched(void *arg, const struct sl_fetch_result *r);

static bool job_fetch(struct job *j, const char *url)
{
    struct sl_fetch_opts o = {
        .url = url,
        .ca_file = j->src->ca_file,
        .headers = "Accept: application/json\r\n",
        .timeout_ms = JWKS_FETCH_TIMEOUT_MS,
    };

    j->f = sl_fetch(j->w->loop, &o, on_fetched, j);
    return j->f != NULL;
}

static void on_fetched(void *arg, const struct sl_fetch_result *r)
{
    struct job *j = arg;
    struct jwks_set *set = NULL;
    const char *why = NULL;
    char status[64];
    size_t skipped = 0;

    j->f = NULL;
    if (r->error != NULL || r->status != 200) {
        if (r->error == NULL)
            snprintf(status, sizeof(status), "the IdP answered %d", r->status);
        job_end(j, NULL, r->error != NULL ? r->error : status, false, 0);
        return;
    }
    if (j->discovering) {
        char *uri = sl__jwks_discovered_uri(r->body, r->body_len, j->src->issuer, &why);

        j->discovering = false;
        if (uri != NULL && !job_fetch(j, uri))
            why = "the discovered jwks_uri cannot be fetched";
        free(uri);
        if (why != NULL)
            job_end(j, NULL, why, false, 0);
        return;
    }
    set = sl__jwks_parse(r->body, r->body_len, &skipped, &why);
    if (set != NULL && skipped > 0)
        sl_log(SL_LOG_DEBUG, NULL, "jwt: %zu keys of %s skipped (not for signatures we check)",
               skipped, j->src->label);
    job_end(j, set, why, r->has_max_age, r->max_age_s);
}

/* Fetch s on w's loop; the caller claimed s (in_flight) and holds a
 * reference that the job now owns. */
static void job_start(struct jwks_worker *w, struct jwks_source *s)
{
    struct job *j = sl_calloc(1, sizeof(*j), "the jwt plugin's JWKS fetch");

    j->src = s;
    j->w = w;
    j->discovering = s->discovery;
    j->next = w->jobs;
    if (w->jobs != NULL)
        w->jobs->prev = j;
    w->jobs = j;
    if (!job_fetch(j, s->url))
        job_end(j, NULL, "the URL cannot be fetched (a bad URL or CA file)", false, 0);
}

static void take_ref(struct jwks_source *s)
{
    uv_mutex_lock(&reg);
    s->refs++;
    uv_mutex_unlock(&reg);
}

enum jwks_ask sl__jwks_source_ask(struct jwks_source *s, struct jwks_worker *w, bool kid_unknown,
                                  uint64_t *seq)
{
    uint64_t now = now_ms();
    enum jwks_ask a = JWKS_WAIT;
    bool start = false;

    *seq = atomic_load(&s->seq);
    uv_mutex_lock(&s->lock);
    if (kid_unknown && s->set != NULL) {
        /* A flood of made-up kids costs one fetch per 10 s, no more. */
        if (s->last_kid_fetch != 0 && now - s->last_kid_fetch < JWKS_KID_REFETCH_MS) {
            a = JWKS_NO;
        } else {
            s->last_kid_fetch = now;
            start = !s->in_flight;
        }
    } else if (s->set == NULL && !s->in_flight) {
        if (s->failures > 0 && now < s->next_due)
            a = JWKS_DOWN;
        else
            start = true;
    }
    if (start)
        s->in_flight = true;
    uv_mutex_unlock(&s->lock);
    if (start) {
        take_ref(s);
        job_start(w, s);
    }
    return a;
}

void sl__jwks_wait(struct jwks_worker *w, struct jwks_wait *wt, uint64_t seq)
{
    wt->seq = seq;
    wt->deadline = now_ms() + JWKS_WAIT_MS;
    wt->prev = NULL;
    wt->next = w->waiters;
    if (w->waiters != NULL)
        w->waiters->prev = wt;
    w->waiters = wt;
    wt->waiting = true;
}

void sl__jwks_unwait(struct jwks_worker *w, struct jwks_wait *wt)
{
    if (!wt->waiting)
        return;
    if (wt->prev != NULL)
        wt->prev->next = wt->next;
    else
        w->waiters = wt->next;
    if (wt->next != NULL)
        wt->next->prev = wt->prev;
    wt->waiting = false;
}

/* Run the done of every waiter whose fetch completed or whose time is up.
 * One at a time, from the head again after each: a done may resume a
 * request, and what that runs may add or take out waiters. */
static void run_waiters(struct jwks_worker *w)
{
    uint64_t now = now_ms();
    struct jwks_wait *wt;

    for (;;) {
        for (wt = w->waiters; wt != NULL; wt = wt->next)
            if (atomic_load(&wt->src->seq) != wt->seq || now >= wt->deadline)
                break;
        if (wt == NULL)
            return;
        sl__jwks_unwait(w, wt);
        wt->done(wt, atomic_load(&wt->src->seq) == wt->seq);
    }
}

static void on_wake(uv_async_t *a)
{
    run_waiters(a->data);
}

/* Claim every source that is due and fetch it here. */
static void on_tick(uv_timer_t *t)
{
    struct jwks_worker *w = t->data;
    struct jwks_source *due[16];
    size_t n = 0;
    uint64_t now = now_ms();

    uv_mutex_lock(&reg);
    for (struct jwks_source *s = sources; s != NULL && n < 16; s = s->next) {
        uv_mutex_lock(&s->lock);
        if (!s->in_flight && now >= s->next_due) {
            s->in_flight = true;
            s->refs++;
            due[n++] = s;
        }
        uv_mutex_unlock(&s->lock);
    }
    uv_mutex_unlock(&reg);
    for (size_t i = 0; i < n; i++)
        job_start(w, due[i]);
    run_waiters(w);
}

struct jwks_worker *sl__jwks_worker_new(uv_loop_t *loop)
{
    struct jwks_worker *w = sl_calloc(1, sizeof(*w), "the jwt plugin's JWKS worker");

    uv_once(&once, reg_init);
    w->loop = loop;
    uv_timer_init(loop, &w->tick);
    uv_async_init(loop, &w->wake, on_wake);
    w->tick.data = w->wake.data = w;
    w->open_handles = 2;
    /* Neither may keep a stopping worker's loop alive. */
    uv_unref((uv_handle_t *)&w->tick);
    uv_unref((uv_handle_t *)&w->wake);
    uv_timer_start(&w->tick, on_tick, 0, TICK_MS);
    uv_mutex_lock(&reg);
    w->next = workers;
    workers = w;
    uv_mutex_unlock(&reg);
    return w;
}

static void on_closed(uv_handle_t *h)
{
    struct jwks_worker *w = h->data;

    if (--w->open_handles == 0)
        free(w);
}

void sl__jwks_worker_free(struct jwks_worker *w)
{
    struct jwks_worker **pp;

    if (w == NULL)
        return;
    uv_mutex_lock(&reg);
    for (pp = &workers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    uv_mutex_unlock(&reg);
    /* Fetches on this loop end with it: another worker's tick fetches the
     * source again. */
    while (w->jobs != NULL) {
        struct job *j = w->jobs;

        w->jobs = j->next;
        if (j->f != NULL)
            sl_fetch_cancel(j->f);
        uv_mutex_lock(&j->src->lock);
        j->src->in_flight = false;
        uv_mutex_unlock(&j->src->lock);
        sl__jwks_source_put(j->src);
        free(j);
    }
    uv_close((uv_handle_t *)&w->tick, on_closed);
    uv_close((uv_handle_t *)&w->wake, on_closed);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label_value(char *out, size_t size, const char *v)
{
    size_t o = 0;

    for (; *v != '\0' && o + 3 < size; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') {
            out[o++] = '\\';
            out[o++] = *v == '\n' ? 'n' : *v;
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

void sl__jwks_metrics(void (*emit)(void *ctx, const char *text), void *ctx)
{
    char line[2400], label[1024];

    emit(ctx, "# HELP sluice_jwks_refreshes_total JWKS fetches, by issuer (or jwks_uri) and "
              "result.\n# TYPE sluice_jwks_refreshes_total counter\n");
    uv_once(&once, reg_init);
    uv_mutex_lock(&reg);
    for (struct jwks_source *s = sources; s != NULL; s = s->next) {
        label_value(label, sizeof(label), s->label);
        snprintf(line, sizeof(line),
                 "sluice_jwks_refreshes_total{issuer=\"%s\",result=\"ok\"} %llu\n"
                 "sluice_jwks_refreshes_total{issuer=\"%s\",result=\"failed\"} %llu\n",
                 label, (unsigned long long)atomic_load(&s->ok), label,
                 (unsigned long long)atomic_load(&s->failed));
        emit(ctx, line);
    }
    uv_mutex_unlock(&reg);
}
