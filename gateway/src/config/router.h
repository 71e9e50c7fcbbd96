/*
 * Route selection. Built once per config generation, then read-only and
 * shared by every worker.
 *
 * Precedence: routes with a host that matches beat routes without a host (an
 * exact host beats a wildcard; a longer wildcard beats a shorter one). Within
 * the chosen host group, a path_exact match beats the longest path prefix,
 * which beats path_regex routes (first in file order). Among routes with the
 * same path, the first in file order whose methods and headers match wins. If
 * no route of a host's group matches, the next less specific group is tried.
 */
#ifndef SL_ROUTER_H
#define SL_ROUTER_H

#include "sluice/arena.h"
#include "sluice/str.h"

struct sl_route_conf;
struct sl_router;

/* A request as the router sees it. */
struct sl_route_query {
    struct sl_str host; /* lower case, without port */
    struct sl_str path; /* normalised, without query */
    int method;         /* llhttp method */
    /* First value of a request header, {NULL,0} if absent. */
    struct sl_str (*header)(void *arg, const char *name);
    void *arg;
};

/* Build the router over routes (borrowed for the generation's lifetime). */
struct sl_router *sl__router_build(struct sl_arena *a, struct sl_route_conf *routes, size_t n);

/* The route for q, or NULL (404 no_route). Any thread. */
const struct sl_route_conf *sl__router_match(const struct sl_router *r,
                                             const struct sl_route_query *q);

/* Free this thread's regex match scratch (a worker that ends calls it). */
void sl__router_thread_done(void);

/* True if path has prefix on a segment boundary ("/v1" matches "/v1/x"). */
bool sl__path_prefix_match(struct sl_str path, struct sl_str prefix);

#endif
