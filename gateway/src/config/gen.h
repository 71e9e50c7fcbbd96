/*
 * Config generations: an immutable snapshot of everything a request needs
 * (config, router, upstream runtime), refcounted, swapped atomically on
 * reload. Requests in flight keep the generation they started with.
 */
#ifndef SL_GEN_H
#define SL_GEN_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "sluice/arena.h"

#include "config/config.h"
#include "config/upstream.h"

struct sl_router;
struct sl_cleanup;

struct sl_gen {
    atomic_uint refs;
    uint64_t id; /* 1 for the first config, +1 per successful reload */
    struct sl_arena arena;
    struct sl_config *conf;
    struct sl_router *router;
    struct sl_upstream *upstreams; /* parallel to conf->upstreams */
    struct sl_cleanup *cleanups;
    char *file;
    char *text; /* the file as loaded, to rebuild from (DNS changes) */
    size_t text_len;
    time_t loaded_at;
    uint32_t n_workers; /* balancer state was sized for this many */
    /* Listening sockets, n_listen x n_workers, set by sl__listeners_prepare(). */
    int *listen_fds;
};

/*
 * Read and check file. On success returns a generation with one reference;
 * on failure returns NULL. Either way *report receives every error and
 * warning as text (heap, caller frees; NULL if there were none) and *errors
 * their count. n_workers sizes per-worker state (0 = from the config itself).
 * Main thread.
 */
struct sl_gen *sl__gen_load(const char *file, uint32_t n_workers, char **report, int *errors);

/* The same from text already in memory (a copy is kept): how a generation is
 * rebuilt when the addresses behind an upstream's host name change. */
struct sl_gen *sl__gen_load_text(const char *file, const char *text, size_t len, uint32_t n_workers,
                                 char **report, int *errors);

/* Take or drop a reference; the last drop frees the generation. Any thread. */
void sl__gen_ref(struct sl_gen *g);
void sl__gen_unref(struct sl_gen *g);

/*
 * The current generation: swapped by sl__gen_publish() on the main thread,
 * read by workers with one atomic load per new request.
 */
extern _Atomic(struct sl_gen *) sl__gen_current;

/* Make g current (taking over the caller's reference) and drop the old one. */
void sl__gen_publish(struct sl_gen *g);

/*
 * A new reference on the current generation. Workers call this only when the
 * pointer they see has changed; it takes the publish lock, so the generation
 * cannot be freed between reading the pointer and counting the reference.
 */
struct sl_gen *sl__gen_acquire_current(void);

/* The upstream runtime for a route's upstream. */
static inline struct sl_upstream *sl__gen_upstream(const struct sl_gen *g,
                                                   const struct sl_upstream_conf *u)
{
    return &g->upstreams[u->index];
}

#endif
