/*
 * The admin API: its own listener on the main thread's loop (loopback by
 * default), with a bearer token when one is configured.
 *
 *   GET  /status     version, uptime, workers, generation, config file, load time
 *   GET  /metrics    Prometheus text
 *   GET  /upstreams  every target's state and counters
 *   GET  /routes     every route's match, upstream and plugins
 *   GET  /           the dashboard page (dashboard.h), without the token
 *   POST /reload     reload the file: 200 with the new generation, or 400
 *                    with the errors (the running config keeps serving)
 *   POST /reload?dry_run=1
 *                    what a reload would change, applying nothing (dry_run.c)
 *
 * An endpoint answers 400 to a query parameter it does not accept.
 */
#ifndef SL_ADMIN_H
#define SL_ADMIN_H

#include <stdint.h>
#include <uv.h>

struct sl_config;

/*
 * What POST /reload does: reload the file; returns 0 and the new generation,
 * or -1 and the error report (heap, the caller frees).
 */
typedef int sl_admin_reload_fn(uint64_t *generation, char **report);

/*
 * Listen as c->admin says (or stop, without admin:), keeping the listener
 * when the address did not change. Main thread; 0 or a negative errno.
 */
int sl__admin_apply(uv_loop_t *loop, const struct sl_config *c, sl_admin_reload_fn *reload,
                    uint32_t workers);

/* Close the listener and its connections. */
void sl__admin_stop(void);

#endif
