/*
 * Generations.
 */
#include "config/gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "conf/conf_read.h"
#include "config/router.h"
#include "tls/tls.h"
#include "base/util.h"
#include "conf/yaml_tree.h"

_Atomic(struct sl_gen *) sl__gen_current;
static uv_mutex_t publish_lock;
static uv_once_t publish_once = UV_ONCE_INIT;

static void init_lock(void)
{
    uv_mutex_init(&publish_lock);
}

static char *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    for (;;) {
        size_t r;

        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 64 * 1024 * 1024) {
                *err = EFBIG;
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = sl__xrealloc(buf, cap);
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        *err = EIO;
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void free_upstreams(void *arg)
{
    struct sl_gen *g = arg;

    for (size_t i = 0; i < g->conf->n_upstreams; i++)
        for (size_t t = 0; t < g->upstreams[i].n_targets; t++)
            sl__tstate_put(g->upstreams[i].targets[t].st);
}

static const struct sl_lb_ops *balancer_for(enum sl_balance b)
{
    switch (b) {
    case SL_BALANCE_LEAST_CONN:
        return &sl__lb_least_conn;
    case SL_BALANCE_HASH:
        return &sl__lb_hash;
    case SL_BALANCE_P2C:
        return &sl__lb_p2c;
    default:
        return &sl__lb_round_robin;
    }
}

static void build_upstreams(struct sl_gen *g)
{
    struct sl_config *c = g->conf;

    g->upstreams =
        sl_arena_calloc(&g->arena, (c->n_upstreams ? c->n_upstreams : 1) * sizeof(*g->upstreams));
    for (size_t i = 0; i < c->n_upstreams; i++) {
        struct sl_upstream *u = &g->upstreams[i];
        struct sl_lb_target *view;
        size_t n;

        u->conf = &c->upstreams[i];
        u->passive.failures = u->conf->passive_failures;
        u->passive.eject_ms = u->conf->passive_eject_ms;
        u->n_targets = n = u->conf->n_targets;
        u->targets = sl_arena_calloc(&g->arena, (n ? n : 1) * sizeof(*u->targets));
        view = sl__xcalloc(n ? n : 1, sizeof(*view));
        for (size_t t = 0; t < n; t++) {
            struct sl_target *tg = &u->targets[t];

            tg->conf = &u->conf->targets[t];
            tg->st = sl__tstate_get(u->conf->name, tg->conf->ip);
            /* TLS connections are pooled apart, by the settings they were
             * verified with (a reload that changes them starts new pools). */
            if (u->conf->tls != NULL)
                snprintf(tg->pool_key, sizeof(tg->pool_key), "%s|tls|%llu", tg->conf->ip,
                         (unsigned long long)sl__tls_client_id(u->conf->tls));
            else
                snprintf(tg->pool_key, sizeof(tg->pool_key), "%s", tg->conf->ip);
            tg->id_hash = sl__lb_hash_bytes(tg->conf->ip, strlen(tg->conf->ip));
            view[t] = (struct sl_lb_target){.weight = tg->conf->weight, .id_hash = tg->id_hash};
        }
        u->lb = balancer_for(u->conf->balance);
        if (u->lb->build != NULL)
            u->lb_shared = u->lb->build(&g->arena, view, n);
        /* One cache line apart, so workers do not share lines. */
        u->lb_stride = (u->lb->state_size(n) + 63) & ~(size_t)63;
        u->lb_state = sl_arena_calloc(&g->arena, u->lb_stride * g->n_workers + 64);
        for (uint32_t w = 0; w < g->n_workers; w++)
            u->lb->init(u->lb_state + w * u->lb_stride, view, n,
                        0x9e3779b97f4a7c15ull * (w + 1) ^ (uint64_t)time(NULL));
        free(view);
        u->budget_stride = (sizeof(struct sl_budget) + 63) & ~(size_t)63;
        u->budget = sl_arena_calloc(&g->arena, u->budget_stride * g->n_workers + 64);
    }
}

static struct sl_gen *load(const char *file, char *text, size_t len, int read_err,
                           uint32_t n_workers, char **report, int *errors)
{
    struct sl_conf_ctx ctx;
    const struct sl_node *root;
    struct sl_gen *g = sl__xcalloc(1, sizeof(*g));

    sl_arena_init(&g->arena, 16 * 1024, 0);
    atomic_init(&g->refs, 1);
    g->file = sl__xstrdup(file);
    sl__conf_ctx_init(&ctx, file, text, len, &g->arena);
    if (text == NULL) {
        sl__conf_file_error(&ctx, "cannot read the file: %s", strerror(read_err));
        goto fail;
    }
    root = sl__yaml_load(&ctx, text, len);
    if (root == NULL)
        goto fail;
    g->conf = sl__config_parse(&ctx, root);
    if (ctx.errors > 0)
        goto fail;
    g->n_workers = n_workers ? n_workers : g->conf->workers;
    g->router = sl__router_build(&g->arena, g->conf->routes, g->conf->n_routes);
    build_upstreams(g);
    sl__conf_on_free(&ctx, free_upstreams, g);
    g->cleanups = ctx.cleanups;
    g->loaded_at = time(NULL);
    g->text = text;
    g->text_len = len;
    *report = ctx.report.p;
    *errors = 0;
    return g;

fail:
    *report = ctx.report.p;
    *errors = ctx.errors;
    sl__cleanups_run(ctx.cleanups);
    sl_arena_destroy(&g->arena);
    free(g->file);
    free(g);
    free(text);
    return NULL;
}

struct sl_gen *sl__gen_load(const char *file, uint32_t n_workers, char **report, int *errors)
{
    size_t len = 0;
    int err = 0;
    char *text = read_file(file, &len, &err);

    return load(file, text, len, err, n_workers, report, errors);
}

struct sl_gen *sl__gen_load_text(const char *file, const char *text, size_t len, uint32_t n_workers,
                                 char **report, int *errors)
{
    char *copy = sl__xmalloc(len + 1);

    memcpy(copy, text, len);
    copy[len] = '\0';
    return load(file, copy, len, 0, n_workers, report, errors);
}

void sl__gen_ref(struct sl_gen *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void sl__gen_unref(struct sl_gen *g)
{
    if (g == NULL || atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
        return;
    sl__cleanups_run(g->cleanups);
    sl_arena_destroy(&g->arena);
    free(g->listen_fds);
    free(g->text);
    free(g->file);
    free(g);
}

void sl__gen_publish(struct sl_gen *g)
{
    struct sl_gen *old;

    uv_once(&publish_once, init_lock);
    uv_mutex_lock(&publish_lock);
    old = atomic_exchange_explicit(&sl__gen_current, g, memory_order_acq_rel);
    uv_mutex_unlock(&publish_lock);
    sl__gen_unref(old);
}

struct sl_gen *sl__gen_acquire_current(void)
{
    struct sl_gen *g;

    uv_once(&publish_once, init_lock);
    uv_mutex_lock(&publish_lock);
    g = atomic_load_explicit(&sl__gen_current, memory_order_acquire);
    if (g != NULL)
        sl__gen_ref(g);
    uv_mutex_unlock(&publish_lock);
    return g;
}
