/*
 * Active health checks: one checker per gateway instance, on the main
 * thread's loop. Every target of an upstream with health_check gets an HTTP
 * GET of the check path every interval; `unhealthy` consecutive failures mark
 * it down and `healthy` consecutive successes bring it back. The result is an
 * atomic in the target's shared state (upstream.h), so every worker sees it
 * at its next request.
 */
#ifndef SL_HEALTH_H
#define SL_HEALTH_H

#include <uv.h>

struct sl_gen;

/* Start, keep or stop checks to match g's upstreams. Main thread. */
void sl__health_sync(uv_loop_t *loop, const struct sl_gen *g);

/* Stop every check and close its handles (at exit). */
void sl__health_stop(void);

#endif
