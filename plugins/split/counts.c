/*
 * split plugin: its request counts (counts.h).
 */
#include "counts.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sluice/alloc.h"
#include "sluice/str.h"

struct cell {
    struct cell *next; /* older cells; set before the cell is published */
    _Atomic uint64_t count;
    const char *upstream; /* points into route[] */
    char route[];         /* route, NUL, upstream, NUL */
};

/* Newest first. Readers walk it without the lock: a cell is complete before
 * it becomes the head (release), and cells never change or go away. */
static _Atomic(struct cell *) cells;
static uv_mutex_t cells_lock;
static uv_once_t cells_once = UV_ONCE_INIT;

struct slot {
    uint64_t hash;
    struct cell *cell; /* NULL: empty */
};

struct split_cache {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
};

static void init_lock(void)
{
    uv_mutex_init(&cells_lock);
}

static bool is(const struct cell *c, const char *route, const char *upstream)
{
    return strcmp(c->route, route) == 0 && strcmp(c->upstream, upstream) == 0;
}

/* The shared cell of (route, upstream), made on first use. */
static struct cell *shared_cell(const char *route, const char *upstream)
{
    size_t rl = strlen(route), ul = strlen(upstream);
    struct cell *c;

    uv_once(&cells_once, init_lock);
    uv_mutex_lock(&cells_lock);
    for (c = atomic_load(&cells); c != NULL && !is(c, route, upstream); c = c->next)
        ;
    if (c == NULL) {
        c = sl_calloc(1, sizeof(*c) + rl + ul + 2, "the split plugin's counters");
        memcpy(c->route, route, rl + 1);
        memcpy(c->route + rl + 1, upstream, ul + 1);
        c->upstream = c->route + rl + 1;
        c->next = atomic_load(&cells);
        atomic_store_explicit(&cells, c, memory_order_release);
    }
    uv_mutex_unlock(&cells_lock);
    return c;
}

struct split_cache *sl__split_cache_new(void)
{
    struct split_cache *c = sl_calloc(1, sizeof(*c), "the split plugin's counters");

    c->cap = 16;
    c->slots = sl_calloc(c->cap, sizeof(*c->slots), "the split plugin's counters");
    return c;
}

void sl__split_cache_free(struct split_cache *c)
{
    if (c == NULL)
        return;
    free(c->slots);
    free(c);
}

static void insert(struct split_cache *c, uint64_t hash, struct cell *cell)
{
    size_t i = hash & (c->cap - 1);

    while (c->slots[i].cell != NULL)
        i = (i + 1) & (c->cap - 1);
    c->slots[i] = (struct slot){hash, cell};
    c->used++;
}

/* Double the table when half full, so that probes stay short. */
static void grow(struct split_cache *c)
{
    struct slot *old = c->slots;
    size_t n = c->cap;

    c->cap *= 2;
    c->used = 0;
    c->slots = sl_calloc(c->cap, sizeof(*c->slots), "the split plugin's counters");
    for (size_t i = 0; i < n; i++)
        if (old[i].cell != NULL)
            insert(c, old[i].hash, old[i].cell);
    free(old);
}

static struct cell *cached_cell(struct split_cache *c, const char *route, const char *upstream)
{
    uint64_t h = sl_hash(0, route, strlen(route)) ^ sl_hash(1, upstream, strlen(upstream));
    size_t i = h & (c->cap - 1);
    struct cell *cell;

    for (; c->slots[i].cell != NULL; i = (i + 1) & (c->cap - 1))
        if (c->slots[i].hash == h && is(c->slots[i].cell, route, upstream))
            return c->slots[i].cell;
    cell = shared_cell(route, upstream);
    if (2 * (c->used + 1) > c->cap)
        grow(c);
    insert(c, h, cell);
    return cell;
}

void sl__split_count(struct split_cache *c, const char *route, const char *upstream)
{
    struct cell *cell = c != NULL ? cached_cell(c, route, upstream) : shared_cell(route, upstream);

    atomic_fetch_add_explicit(&cell->count, 1, memory_order_relaxed);
}

/* Write v escaped as a label value of the text format into out (room for
 * 2 * strlen(v) bytes); returns the end. */
static char *escape(char *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n')
            *out++ = '\\';
        *out++ = *v == '\n' ? 'n' : *v;
    }
    return out;
}

void sl__split_metrics(void (*emit)(void *ctx, const char *text), void *ctx)
{
    emit(ctx, "# HELP sluice_split_requests_total Requests the split plugin sent, by route and "
              "the upstream it chose.\n# TYPE sluice_split_requests_total counter\n");
    for (struct cell *c = atomic_load_explicit(&cells, memory_order_acquire); c != NULL;
         c = c->next) {
        char *line = sl_malloc(2 * (strlen(c->route) + strlen(c->upstream)) + 96,
                               "the split plugin's metrics");
        char *p = line;

        p = escape(stpcpy(p, "sluice_split_requests_total{route=\""), c->route);
        p = escape(stpcpy(p, "\",upstream=\""), c->upstream);
        sprintf(p, "\"} %llu\n",
                (unsigned long long)atomic_load_explicit(&c->count, memory_order_relaxed));
        emit(ctx, line);
        free(line);
    }
}
