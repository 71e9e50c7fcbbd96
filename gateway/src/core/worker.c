/*
 * Worker threads and their listeners.
 *
 * Listening sockets are created on the main thread (so a port in use is an
 * error at start or reload, not a worker crash), one per worker per address
 * with SO_REUSEPORT, and handed to each worker, which opens it on its own
 * loop. libuv 1.44 has no UV_TCP_REUSEPORT, hence the socket dance.
 */
#include "core/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "config/gen.h"
#include "config/plugins.h"
#include "config/router.h"

atomic_uint sl__conn_count;

static struct sl_worker *workers;
static uint32_t n_workers;
static const struct sl_worker_hooks *hooks;
/* Stopping: set by sl__workers_stop_now() (a second stop signal), read by
 * every worker on its wakeup; running counts the workers whose loop has not
 * ended, and the last one to end sends stopped (sl__workers_stop_begin()). */
static atomic_bool stop_now;
static atomic_uint running;
static uv_async_t *_Atomic stopped;

void sl__workers_set_hooks(const struct sl_worker_hooks *h)
{
    hooks = h;
}
static _Thread_local struct sl_worker *self;

/* -- listening sockets (main thread) ------------------------------------------ */

/* Sockets already open, by address, so a reload keeps them. */
struct lsock {
    struct sockaddr_storage addr;
    socklen_t len;
    int *fds; /* one per worker */
    struct lsock *next;
};

static struct lsock *lsocks;

static int open_listener(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd, one = 1, rc;

    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (ss->ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 511) != 0)
        goto fail;
    return fd;

fail:
    rc = -errno;
    close(fd);
    return rc;
}

int sl__listeners_prepare(struct sl_gen *gen, uint32_t n, char *why, size_t why_len)
{
    const struct sl_config *c = gen->conf;
    struct lsock *fresh = NULL, **pp;
    int *fds = sl__xcalloc(c->n_listen * n + 1, sizeof(int));
    int rc = 0;

    for (size_t i = 0; i < c->n_listen; i++) {
        const struct sl_listen_conf *l = &c->listen[i];
        struct lsock *s;

        for (s = lsocks; s != NULL; s = s->next)
            if (s->len == l->addrlen && memcmp(&s->addr, &l->addr, s->len) == 0)
                break;
        if (s == NULL) {
            s = sl__xcalloc(1, sizeof(*s));
            s->addr = l->addr;
            s->len = l->addrlen;
            s->fds = sl__xcalloc(n, sizeof(int));
            for (uint32_t w = 0; w < n; w++) {
                int fd = open_listener(&l->addr, l->addrlen);

                if (fd < 0) {
                    snprintf(why, why_len, "cannot listen on %s: %s", l->address, strerror(-fd));
                    for (uint32_t k = 0; k < w; k++)
                        close(s->fds[k]);
                    free(s->fds);
                    free(s);
                    rc = fd;
                    goto fail;
                }
                s->fds[w] = fd;
            }
            s->next = fresh;
            fresh = s;
        }
        memcpy(fds + i * n, s->fds, n * sizeof(int));
    }
    /* Forget addresses the new config dropped: their workers close them. */
    for (pp = &lsocks; *pp != NULL;) {
        struct lsock *s = *pp;
        bool kept = false;

        for (size_t i = 0; i < c->n_listen; i++)
            if (s->len == c->listen[i].addrlen && memcmp(&s->addr, &c->listen[i].addr, s->len) == 0)
                kept = true;
        if (kept) {
            pp = &s->next;
        } else {
            *pp = s->next;
            free(s->fds);
            free(s);
        }
    }
    while (fresh != NULL) {
        struct lsock *s = fresh;

        fresh = s->next;
        s->next = lsocks;
        lsocks = s;
    }
    free(gen->listen_fds);
    gen->listen_fds = fds;
    return 0;

fail:
    while (fresh != NULL) {
        struct lsock *s = fresh;

        fresh = s->next;
        for (uint32_t w = 0; w < n; w++)
            close(s->fds[w]);
        free(s->fds);
        free(s);
    }
    free(fds);
    return rc;
}

/* -- generations on a worker -------------------------------------------------- */

struct sl_worker *sl__worker_self(void)
{
    return self;
}

static void wgen_drop(struct sl_worker *w, struct sl_wgen *wg)
{
    struct sl_wgen **pp;

    for (pp = &w->old; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == wg) {
            *pp = wg->next;
            break;
        }
    }
    sl__gen_unref(wg->gen);
    free(wg);
}

struct sl_wgen *sl__worker_gen_acquire(struct sl_worker *w)
{
    struct sl_gen *g = atomic_load_explicit(&sl__gen_current, memory_order_acquire);

    if (w->wgen == NULL || w->wgen->gen != g) {
        struct sl_wgen *wg = sl__xcalloc(1, sizeof(*wg)), *old = w->wgen;

        wg->gen = sl__gen_acquire_current();
        w->wgen = wg;
        if (old != NULL) {
            if (old->users == 0) {
                sl__gen_unref(old->gen);
                free(old);
            } else {
                old->next = w->old;
                w->old = old;
            }
        }
    }
    w->wgen->users++;
    return w->wgen;
}

void sl__worker_gen_release(struct sl_worker *w, struct sl_wgen *wg)
{
    SL_BUG_ON(wg->users == 0);
    if (--wg->users == 0 && wg != w->wgen)
        wgen_drop(w, wg);
}

/* -- listeners on a worker ------------------------------------------------------ */

struct sl_wlistener {
    uv_tcp_t tcp;
    int fd; /* the socket main made for this worker */
    struct sockaddr_storage addr;
    socklen_t len;
    struct sl_wlistener *next;
};

static void on_connection(uv_stream_t *server, int status)
{
    struct sl_worker *w = server->loop->data;
    struct sl_wlistener *l = server->data;
    struct sl_tls_server *tls = NULL;
    struct sl_wgen *wg;

    if (status < 0) {
        sl_log(SL_LOG_ERROR, NULL, "accept failed: %s", uv_strerror(status));
        return;
    }
    if (w->stopping)
        return;
    /* The listener's TLS settings come from the current generation, so a
     * reload that changes certificates applies to the next connection. */
    wg = sl__worker_gen_acquire(w);
    for (size_t i = 0; i < wg->gen->conf->n_listen; i++) {
        const struct sl_listen_conf *lc = &wg->gen->conf->listen[i];

        if (lc->addrlen == l->len && memcmp(&lc->addr, &l->addr, l->len) == 0)
            tls = lc->tls;
    }
    hooks->accept(w, server, tls);
    sl__worker_gen_release(w, wg);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Open the listeners of gen that this worker lacks; close those gen dropped. */
static int apply_listeners(struct sl_worker *w, struct sl_gen *gen)
{
    const struct sl_config *c = gen->conf;
    struct sl_wlistener **pp;

    /* A handle stays only if gen still hands this worker the very socket it
     * has: two quick reloads that drop then re-add an address give it a new
     * socket, and the old one must go (the kernel would keep routing
     * connections into its backlog). */
    for (pp = &w->listeners; *pp != NULL;) {
        struct sl_wlistener *l = *pp;
        bool kept = false;

        for (size_t i = 0; i < c->n_listen; i++)
            if (gen->listen_fds[i * gen->n_workers + w->id] == l->fd)
                kept = true;
        if (kept) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        uv_close((uv_handle_t *)&l->tcp, free_handle);
    }
    for (size_t i = 0; i < c->n_listen; i++) {
        int fd = gen->listen_fds[i * gen->n_workers + w->id], rc;
        struct sl_wlistener *l;

        for (l = w->listeners; l != NULL; l = l->next)
            if (l->fd == fd)
                break;
        if (l != NULL)
            continue;
        l = sl__xcalloc(1, sizeof(*l));
        l->addr = c->listen[i].addr;
        l->len = c->listen[i].addrlen;
        l->fd = fd;
        uv_tcp_init(&w->loop, &l->tcp);
        l->tcp.data = l;
        rc = uv_tcp_open(&l->tcp, fd);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
        if (rc != 0) {
            sl_log(SL_LOG_ERROR, NULL, "cannot listen on %s: %s", c->listen[i].address,
                   uv_strerror(rc));
            uv_close((uv_handle_t *)&l->tcp, free_handle);
            return rc;
        }
        l->next = w->listeners;
        w->listeners = l;
    }
    return 0;
}

static void close_listeners(struct sl_worker *w)
{
    struct sl_wlistener *l = w->listeners, *next;

    for (; l != NULL; l = next) {
        next = l->next;
        uv_close((uv_handle_t *)&l->tcp, free_handle);
    }
    w->listeners = NULL;
}

/* -- stopping ------------------------------------------------------------------------ */

static void plugins_fini(struct sl_worker *w)
{
    for (size_t i = 0; i < sl__n_plugins; i++) {
        if (sl__plugins[i]->worker_fini != NULL && w->plugin_data[i] != NULL)
            sl__plugins[i]->worker_fini(w->plugin_data[i]);
        w->plugin_data[i] = NULL;
    }
}

static void finish_stop(struct sl_worker *w)
{
    if (w->stopping == 2)
        return;
    w->stopping = 2;
    /* Plugins close their handles (a Redis connection, say) now: while they
     * are open the loop would never end. */
    plugins_fini(w);
    hooks->stop(w);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_close((uv_handle_t *)&w->flush, NULL);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->stop_timer, NULL);
}

void sl__worker_conn_gone(struct sl_worker *w)
{
    if (w->stopping && w->n_conns == 0)
        finish_stop(w);
}

static void on_stop_timeout(uv_timer_t *t)
{
    struct sl_worker *w = t->data;

    sl_log(SL_LOG_WARN, NULL, "shutdown_timeout reached: closing %u connection%s", w->n_conns,
           w->n_conns == 1 ? "" : "s");
    hooks->deadline(w);
}

static void begin_stop(struct sl_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    close_listeners(w);
    hooks->drain(w);
    if (w->n_conns == 0) {
        finish_stop(w);
        return;
    }
    uv_timer_start(&w->stop_timer, on_stop_timeout, w->wgen->gen->conf->shutdown_timeout_ms, 0);
}

/* A second stop signal during the grace: what shutdown_timeout would do at
 * its end (held requests, tunnels and responses in flight closed), now. */
static void stop_at_once(struct sl_worker *w)
{
    if (w->stopping != 1)
        return;
    uv_timer_stop(&w->stop_timer);
    sl_log(SL_LOG_WARN, NULL, "stopping at once: closing %u connection%s", w->n_conns,
           w->n_conns == 1 ? "" : "s");
    hooks->deadline(w);
}

/* -- the loop's own handles ------------------------------------------------------------ */

static void on_wakeup(uv_async_t *a)
{
    struct sl_worker *w = a->data;

    if (atomic_exchange(&w->stop_requested, false))
        begin_stop(w);
    if (w->stopping) {
        if (atomic_load(&stop_now))
            stop_at_once(w);
        return;
    }
    if (atomic_exchange(&w->reload_requested, false) && !w->stopping) {
        /* Take the new generation now, so the old one can be freed as soon
         * as its requests end, and open or close listeners. */
        struct sl_wgen *wg = sl__worker_gen_acquire(w);

        apply_listeners(w, wg->gen);
        sl__worker_gen_release(w, wg);
    }
}

static void on_flush(uv_check_t *h)
{
    hooks->turn(h->data);
}

static void update_date(struct sl_worker *w)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static void on_tick(uv_timer_t *t)
{
    update_date(t->data);
}

static void worker_main(void *arg)
{
    struct sl_worker *w = arg;

    self = w;
    sl__log_thread = w->name;
    w->plugin_data = sl__xcalloc(sl__n_plugins + 1, sizeof(void *));
    for (size_t i = 0; i < sl__n_plugins; i++)
        if (sl__plugins[i]->worker_init != NULL)
            w->plugin_data[i] = sl__plugins[i]->worker_init(&w->loop);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    plugins_fini(w); /* nothing left to do if finish_stop() ran */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    free(w->plugin_data);
    hooks->thread_done(w);
    sl__router_thread_done();
    sl__arena_thread_done();
    if (atomic_fetch_sub(&running, 1) == 1) {
        uv_async_t *a = atomic_load(&stopped);

        if (a != NULL)
            uv_async_send(a);
    }
}

static int worker_init(struct sl_worker *w, uint32_t id)
{
    struct sl_wgen *wg;
    int rc;

    memset(w, 0, sizeof(*w));
    w->id = id;
    snprintf(w->name, sizeof(w->name), "w%u", id);
    uv_loop_init(&w->loop);
    w->loop.data = w;
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    uv_check_init(&w->loop, &w->flush);
    w->flush.data = w;
    uv_check_start(&w->flush, on_flush);
    uv_unref((uv_handle_t *)&w->flush);
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&w->tick);
    uv_timer_init(&w->loop, &w->stop_timer);
    w->stop_timer.data = w;
    update_date(w);
    sl__bufpool_init(&w->bufs, 1024);
    hooks->init(w);
    wg = sl__worker_gen_acquire(w);
    rc = apply_listeners(w, wg->gen);
    sl__worker_gen_release(w, wg);
    return rc;
}

int sl__workers_start(uint32_t n)
{
    workers = sl__xcalloc(n, sizeof(*workers));
    n_workers = n;
    for (uint32_t i = 0; i < n; i++) {
        int rc = worker_init(&workers[i], i);

        if (rc != 0)
            return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        int rc;

        atomic_fetch_add(&running, 1);
        rc = uv_thread_create(&workers[i].thread, worker_main, &workers[i]);
        if (rc != 0) {
            atomic_fetch_sub(&running, 1);
            return rc;
        }
    }
    return 0;
}

void sl__workers_reload(void)
{
    for (uint32_t i = 0; i < n_workers; i++) {
        atomic_store(&workers[i].reload_requested, true);
        uv_async_send(&workers[i].wakeup);
    }
}

void sl__workers_stop_begin(uv_async_t *done)
{
    atomic_store(&stopped, done);
    if (done != NULL && atomic_load(&running) == 0)
        uv_async_send(done);
    for (uint32_t i = 0; i < n_workers; i++) {
        atomic_store(&workers[i].stop_requested, true);
        uv_async_send(&workers[i].wakeup);
    }
}

void sl__workers_stop_now(void)
{
    atomic_store(&stop_now, true);
    for (uint32_t i = 0; i < n_workers; i++) {
        atomic_store(&workers[i].stop_requested, true);
        uv_async_send(&workers[i].wakeup);
    }
}

void sl__workers_stop(void)
{
    sl__workers_stop_begin(NULL);
    for (uint32_t i = 0; i < n_workers; i++) {
        struct sl_worker *w = &workers[i];

        uv_thread_join(&w->thread);
        while (w->old != NULL)
            wgen_drop(w, w->old);
        if (w->wgen != NULL) {
            sl__gen_unref(w->wgen->gen);
            free(w->wgen);
        }
        uv_loop_close(&w->loop);
        hooks->fini(w);
        sl__bufpool_destroy(&w->bufs);
    }
    free(workers);
    workers = NULL;
    n_workers = 0;
    atomic_store(&stop_now, false);
}
