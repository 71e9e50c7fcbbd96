/*
 * The health checker.
 */
#include "server/health.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/gen.h"
#include "base/log.h"
#include "upstream/target_state.h"
#include "base/util.h"

struct probe;

struct check {
    struct check *next;
    struct sl_tstate *st; /* a reference */
    struct sockaddr_storage addr;
    char request[512]; /* the GET we send */
    uint64_t interval_ms, timeout_ms;
    uint32_t healthy, unhealthy;
    uint16_t expect_lo, expect_hi;
    uv_timer_t timer; /* next probe, then the probe's timeout */
    struct probe *probe;
    bool seen;
};

struct probe {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    llhttp_t parser;
    struct check *chk; /* NULL once the check is gone */
    char buf[2048];
    int status;
};

static struct check *checks;
static uv_loop_t *loop;
static llhttp_settings_t settings;

static void on_timer(uv_timer_t *t);

static void probe_closed(uv_handle_t *h)
{
    free(h->data);
}

static void result(struct check *c, bool ok, const char *what)
{
    struct sl_tstate *st = c->st;
    bool up = atomic_load(&st->healthy);

    if (c->probe != NULL) {
        c->probe->chk = NULL;
        uv_close((uv_handle_t *)&c->probe->tcp, probe_closed);
        c->probe = NULL;
    }
    if (ok) {
        st->check_fail = 0;
        st->check_ok++;
        if (!up && st->check_ok >= c->healthy) {
            atomic_store(&st->healthy, true);
            sl_log(SL_LOG_WARN, NULL, "upstream \"%s\" target %s is UP: %u health check%s passed",
                   st->upstream, st->addr, st->check_ok, st->check_ok == 1 ? "" : "s");
        }
    } else {
        snprintf(st->last_check, sizeof(st->last_check), "%s", what);
        st->check_ok = 0;
        st->check_fail++;
        if (up && st->check_fail >= c->unhealthy) {
            atomic_store(&st->healthy, false);
            sl_log(SL_LOG_WARN, NULL,
                   "upstream \"%s\" target %s is DOWN: %u health check%s failed (last: %s)",
                   st->upstream, st->addr, st->check_fail, st->check_fail == 1 ? "" : "s", what);
        }
    }
    uv_timer_start(&c->timer, on_timer, c->interval_ms, 0);
}

static int on_headers(llhttp_t *p)
{
    struct probe *pr = p->data;

    pr->status = p->status_code;
    return HPE_PAUSED;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct probe *pr = h->data;

    (void)suggested;
    *b = uv_buf_init(pr->buf, sizeof(pr->buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct probe *pr = s->data;
    struct check *c = pr->chk;
    char what[96];

    if (c == NULL)
        return;
    if (n > 0) {
        llhttp_errno_t err = llhttp_execute(&pr->parser, b->base, (size_t)n);

        if (err == HPE_PAUSED) {
            snprintf(what, sizeof(what), "status %d", pr->status);
            result(c, pr->status >= c->expect_lo && pr->status <= c->expect_hi, what);
        } else if (err != HPE_OK) {
            result(c, false, "invalid response");
        }
        return;
    }
    if (n < 0)
        result(c, false, n == UV_EOF ? "closed without a response" : uv_strerror((int)n));
}

static void on_written(uv_write_t *w, int status)
{
    struct probe *pr = w->data;

    if (pr->chk != NULL && status < 0)
        result(pr->chk, false, uv_strerror(status));
}

static void on_connect(uv_connect_t *cr, int status)
{
    struct probe *pr = cr->data;
    struct check *c = pr->chk;
    uv_buf_t b;

    if (c == NULL)
        return;
    if (status < 0) {
        result(c, false, uv_strerror(status));
        return;
    }
    b = uv_buf_init(c->request, (unsigned)strlen(c->request));
    pr->write_req.data = pr;
    if (uv_write(&pr->write_req, (uv_stream_t *)&pr->tcp, &b, 1, on_written) != 0 ||
        uv_read_start((uv_stream_t *)&pr->tcp, on_alloc, on_read) != 0)
        result(c, false, "cannot send the check");
}

static void start_probe(struct check *c)
{
    struct probe *pr = sl__xcalloc(1, sizeof(*pr));

    pr->chk = c;
    c->probe = pr;
    uv_tcp_init(loop, &pr->tcp);
    pr->tcp.data = pr;
    pr->connect_req.data = pr;
    llhttp_init(&pr->parser, HTTP_RESPONSE, &settings);
    pr->parser.data = pr;
    uv_timer_start(&c->timer, on_timer, c->timeout_ms, 0);
    if (uv_tcp_connect(&pr->connect_req, &pr->tcp, (struct sockaddr *)&c->addr, on_connect) != 0)
        result(c, false, "connect() failed");
}

static void on_timer(uv_timer_t *t)
{
    struct check *c = t->data;

    if (c->probe != NULL)
        result(c, false, "timed out");
    else
        start_probe(c);
}

static void check_closed(uv_handle_t *h)
{
    struct check *c = h->data;

    sl__tstate_put(c->st);
    free(c);
}

static void check_free(struct check *c)
{
    if (c->probe != NULL) {
        c->probe->chk = NULL;
        uv_close((uv_handle_t *)&c->probe->tcp, probe_closed);
        c->probe = NULL;
    }
    /* Without checks the target is no longer held down by old results. */
    atomic_store(&c->st->healthy, true);
    c->st->check_ok = c->st->check_fail = 0;
    uv_close((uv_handle_t *)&c->timer, check_closed);
}

static void configure(struct check *c, const struct sl_upstream_conf *u, const struct sl_target *t)
{
    const struct sl_health_conf *h = &u->health;

    memcpy(&c->addr, &t->conf->addr, sizeof(c->addr));
    c->interval_ms = h->interval_ms;
    c->timeout_ms = h->timeout_ms;
    c->healthy = h->healthy;
    c->unhealthy = h->unhealthy;
    c->expect_lo = h->expect_lo;
    c->expect_hi = h->expect_hi;
    snprintf(c->request, sizeof(c->request),
             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-health-check\r\n"
             "Connection: close\r\n\r\n",
             h->path, h->host ? h->host : t->conf->ip);
}

void sl__health_sync(uv_loop_t *l, const struct sl_gen *g)
{
    struct check **pp;
    size_t started = 0;

    if (loop == NULL) {
        llhttp_settings_init(&settings);
        settings.on_headers_complete = on_headers;
    }
    loop = l;
    for (struct check *c = checks; c != NULL; c = c->next)
        c->seen = false;
    for (size_t i = 0; i < g->conf->n_upstreams; i++) {
        const struct sl_upstream *u = &g->upstreams[i];

        if (!u->conf->health.enabled)
            continue;
        for (size_t k = 0; k < u->n_targets; k++) {
            struct check *c;

            for (c = checks; c != NULL; c = c->next)
                if (c->st == u->targets[k].st)
                    break;
            if (c == NULL) {
                c = sl__xcalloc(1, sizeof(*c));
                c->st = u->targets[k].st;
                sl__tstate_ref(c->st);
                uv_timer_init(loop, &c->timer);
                c->timer.data = c;
                c->next = checks;
                checks = c;
                /* The first round, spread over a tenth of a second. */
                uv_timer_start(&c->timer, on_timer, (started++ * 7) % 100, 0);
            }
            configure(c, u->conf, &u->targets[k]);
            c->seen = true;
        }
    }
    for (pp = &checks; *pp != NULL;) {
        struct check *c = *pp;

        if (c->seen) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        check_free(c);
    }
}

void sl__health_stop(void)
{
    while (checks != NULL) {
        struct check *c = checks;

        checks = c->next;
        check_free(c);
    }
}
