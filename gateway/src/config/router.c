/*
 * Route selection: routes are grouped by host, and each group keeps its exact
 * paths, its prefixes (longest first) and its regexes (file order), so a
 * lookup walks at most three short lists per group.
 */
#include "config/router.h"

#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/config.h"
#include "base/util.h"

struct group {
    const char *host; /* NULL for the routes without host */
    bool wildcard;    /* host is "*.suffix"; suffix kept with its dot */
    size_t host_len;
    const struct sl_route_conf **exact, **prefix, **regex, **any;
    size_t n_exact, n_prefix, n_regex, n_any;
};

struct sl_router {
    struct group *exact_hosts; /* sorted by host for bsearch */
    size_t n_exact_hosts;
    struct group *wild_hosts; /* longest suffix first */
    size_t n_wild_hosts;
    struct group fallback;
};

static _Thread_local pcre2_match_data *match_data;

bool sl__path_prefix_match(struct sl_str path, struct sl_str prefix)
{
    if (prefix.len == 1 && prefix.p[0] == '/')
        return path.len >= 1;
    if (prefix.len > 0 && prefix.p[prefix.len - 1] == '/')
        prefix.len--; /* "/v1/" and "/v1" mean the same prefix */
    if (!sl_str_has_prefix(path, prefix))
        return false;
    return path.len == prefix.len || path.p[prefix.len] == '/';
}

static void add(const struct sl_route_conf ***list, size_t *n, struct sl_arena *a,
                const struct sl_route_conf *r, size_t cap)
{
    if (*list == NULL)
        *list = sl_arena_alloc(a, cap * sizeof(**list));
    (*list)[(*n)++] = r;
}

static size_t prefix_len(const struct sl_route_conf *r)
{
    size_t n = strlen(r->path);

    return n > 1 && r->path[n - 1] == '/' ? n - 1 : n;
}

static int by_prefix_len(const void *a, const void *b)
{
    const struct sl_route_conf *ra = *(const struct sl_route_conf *const *)a;
    const struct sl_route_conf *rb = *(const struct sl_route_conf *const *)b;
    size_t la = prefix_len(ra), lb = prefix_len(rb);

    /* Longest first; equal lengths keep file order. */
    if (la != lb)
        return la > lb ? -1 : 1;
    return ra->index < rb->index ? -1 : ra->index > rb->index;
}

static void group_add(struct group *g, struct sl_arena *a, const struct sl_route_conf *r,
                      size_t cap)
{
    if (r->path_exact)
        add(&g->exact, &g->n_exact, a, r, cap);
    else if (r->path)
        add(&g->prefix, &g->n_prefix, a, r, cap);
    else if (r->regex)
        add(&g->regex, &g->n_regex, a, r, cap);
    else
        add(&g->any, &g->n_any, a, r, cap);
}

static int by_host(const void *a, const void *b)
{
    return strcmp(((const struct group *)a)->host, ((const struct group *)b)->host);
}

static int by_suffix_len(const void *a, const void *b)
{
    const struct group *ga = a, *gb = b;

    return ga->host_len > gb->host_len ? -1 : ga->host_len < gb->host_len;
}

static struct group *find_or_add(struct group *groups, size_t *n, const char *host, bool wild)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(groups[i].host, host) == 0)
            return &groups[i];
    memset(&groups[*n], 0, sizeof(groups[*n]));
    groups[*n].host = host;
    groups[*n].wildcard = wild;
    groups[*n].host_len = strlen(host);
    return &groups[(*n)++];
}

static void sort_prefixes(struct group *g)
{
    if (g->n_prefix > 1)
        qsort(g->prefix, g->n_prefix, sizeof(void *), by_prefix_len);
}

struct sl_router *sl__router_build(struct sl_arena *a, struct sl_route_conf *routes, size_t n)
{
    struct sl_router *r = sl_arena_calloc(a, sizeof(*r));
    size_t cap = n ? n : 1;

    r->exact_hosts = sl_arena_calloc(a, cap * sizeof(*r->exact_hosts));
    r->wild_hosts = sl_arena_calloc(a, cap * sizeof(*r->wild_hosts));
    for (size_t i = 0; i < n; i++) {
        const struct sl_route_conf *rc = &routes[i];
        struct group *g = &r->fallback;

        if (rc->upstream == NULL)
            continue; /* only in a config that failed to load */
        if (rc->host && rc->host[0] == '*')
            g = find_or_add(r->wild_hosts, &r->n_wild_hosts, rc->host + 1, true);
        else if (rc->host)
            g = find_or_add(r->exact_hosts, &r->n_exact_hosts, rc->host, false);
        group_add(g, a, rc, cap);
    }
    /* qsort() wants a non-NULL base even for nothing to sort. */
    if (r->n_exact_hosts > 1)
        qsort(r->exact_hosts, r->n_exact_hosts, sizeof(*r->exact_hosts), by_host);
    if (r->n_wild_hosts > 1)
        qsort(r->wild_hosts, r->n_wild_hosts, sizeof(*r->wild_hosts), by_suffix_len);
    for (size_t i = 0; i < r->n_exact_hosts; i++)
        sort_prefixes(&r->exact_hosts[i]);
    for (size_t i = 0; i < r->n_wild_hosts; i++)
        sort_prefixes(&r->wild_hosts[i]);
    sort_prefixes(&r->fallback);
    return r;
}

/* Methods and headers: the conditions besides host and path. */
static bool conditions_match(const struct sl_route_conf *rc, const struct sl_route_query *q)
{
    if (rc->methods != 0 &&
        (q->method < 0 || q->method > 63 || !(rc->methods & (1ull << q->method))))
        return false;
    for (size_t i = 0; i < rc->n_headers; i++) {
        struct sl_str v = q->header(q->arg, rc->headers[i].name);

        if (v.p == NULL || !sl_str_eq(v, sl_str_from(rc->headers[i].value)))
            return false;
    }
    return true;
}

void sl__router_thread_done(void)
{
    if (match_data != NULL) {
        pcre2_match_data_free(match_data);
        match_data = NULL;
    }
}

static bool regex_match(const struct sl_route_conf *rc, struct sl_str path)
{
    if (match_data == NULL)
        match_data = pcre2_match_data_create(1, NULL);
    return pcre2_match(rc->regex, (PCRE2_SPTR)path.p, path.len, 0, 0, match_data, NULL) >= 0;
}

static const struct sl_route_conf *group_match(const struct group *g,
                                               const struct sl_route_query *q)
{
    for (size_t i = 0; i < g->n_exact; i++)
        if (sl_str_eq(q->path, sl_str_from(g->exact[i]->path_exact)) &&
            conditions_match(g->exact[i], q))
            return g->exact[i];
    for (size_t i = 0; i < g->n_prefix; i++)
        if (sl__path_prefix_match(q->path, sl_str_from(g->prefix[i]->path)) &&
            conditions_match(g->prefix[i], q))
            return g->prefix[i];
    for (size_t i = 0; i < g->n_regex; i++)
        if (regex_match(g->regex[i], q->path) && conditions_match(g->regex[i], q))
            return g->regex[i];
    /* A route without any path condition is a catch-all, below everything. */
    for (size_t i = 0; i < g->n_any; i++)
        if (conditions_match(g->any[i], q))
            return g->any[i];
    return NULL;
}

const struct sl_route_conf *sl__router_match(const struct sl_router *r,
                                             const struct sl_route_query *q)
{
    const struct sl_route_conf *rc;

    if (q->host.len > 0 && r->n_exact_hosts > 0) {
        size_t lo = 0, hi = r->n_exact_hosts;

        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            const struct group *g = &r->exact_hosts[mid];
            int c = strncmp(g->host, q->host.p, q->host.len);

            if (c == 0 && g->host_len != q->host.len)
                c = g->host_len < q->host.len ? -1 : 1;
            if (c == 0) {
                if ((rc = group_match(g, q)) != NULL)
                    return rc;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    for (size_t i = 0; i < r->n_wild_hosts; i++) {
        const struct group *g = &r->wild_hosts[i]; /* host is ".example.com" */

        if (q->host.len > g->host_len &&
            memcmp(q->host.p + q->host.len - g->host_len, g->host, g->host_len) == 0 &&
            (rc = group_match(g, q)) != NULL)
            return rc;
    }
    return group_match(&r->fallback, q);
}
