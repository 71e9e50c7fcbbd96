/*
 * Per-worker keep-alive pools of idle upstream connections, found by target
 * key ("10.0.0.1:80"). Pools belong to the worker, not to a config
 * generation, so a reload keeps its warm connections.
 */
#ifndef SL_POOL_H
#define SL_POOL_H

#include <stddef.h>
#include <stdint.h>

struct sl_upconn;

struct sl_pool {
    char key[96];
    struct sl_upconn *idle; /* most recently used first */
    uint32_t n_idle;
    struct sl_pool *next; /* hash chain */
    void *session;        /* SSL_SESSION to resume TLS to this target, or NULL */
};

struct sl_pools;

struct sl_pools *sl__pools_new(void);

/* Close every idle connection with close(), which must take it out of its
 * pool (sl__upconn_close() does), and free the pools (worker loop, at stop). */
void sl__pools_close_all(struct sl_pools *ps, void (*close)(struct sl_upconn *uc));
void sl__pools_free(struct sl_pools *ps);

/* The pool for key, created on first use. */
struct sl_pool *sl__pool_get(struct sl_pools *ps, const char *key);

/* Take the most recently used idle connection, or NULL. */
struct sl_upconn *sl__pool_take(struct sl_pool *p);

/* Park uc idle in p; returns -1 (caller closes uc) when p has max already. */
int sl__pool_put(struct sl_pool *p, struct sl_upconn *uc, uint32_t max);

/* Remove an idle uc from its pool (it closed or timed out). */
void sl__pool_remove(struct sl_pool *p, struct sl_upconn *uc);

#endif
