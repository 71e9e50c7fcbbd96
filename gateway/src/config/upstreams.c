/*
 * The upstreams: section: targets (a host name gives one target per
 * address), balancing, keep-alive, timeouts, retries, active and passive
 * health checks, TLS to the targets.
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_read.h"
#include "upstream/resolve.h"
#include "tls/tls.h"
#include "base/util.h"

/*
 * Read one target into t[0..], which has room for SL_RESOLVE_MAX: a name
 * becomes one target per address behind it. Returns how many were added.
 */
static size_t read_target(struct sl_conf_ctx *ctx, const struct sl_node *item,
                          struct sl_target_conf *t)
{
    static const char *const keys[] = {"address", "weight", "backup", NULL};
    struct sockaddr_storage addrs[SL_RESOLVE_MAX];
    const struct sl_node *addr = item;
    struct sl_target_conf base = {.weight = 1};
    char host[256];
    uint16_t port;
    const char *why;
    uint64_t w = 1;
    size_t n;
    bool is_name;

    if (item->type == SL_NODE_SCALAR) {
        base.address = item->text; /* "- 127.0.0.1:9001" is allowed */
    } else {
        if (sl_conf_keys(ctx, item, keys) != 0 && item->type != SL_NODE_MAP)
            return 0;
        if (sl_conf_str(ctx, item, "address", &base.address, true) != 0)
            return 0;
        addr = sl_node_get(item, "address");
        if (sl_conf_uint(ctx, item, "weight", 1, 1000, &w, false) == 0)
            base.weight = (uint32_t)w;
        sl_conf_bool(ctx, item, "backup", &base.backup, false);
    }
    if (sl__split_hostport(base.address, host, sizeof(host), &port, &why) != 0 ||
        (port == 0 && (why = "port must be a number from 1 to 65535")) ||
        sl__resolve(host, port, false, true, addrs, SL_RESOLVE_MAX, &n, &is_name, &why) != 0) {
        sl_conf_error(ctx, addr, "%s, found \"%s\"", why, base.address);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        t[i] = base;
        t[i].addr = addrs[i];
        t[i].addrlen = addrs[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                      : sizeof(struct sockaddr_in);
        t[i].from_name = is_name;
        sl__addr_str((struct sockaddr *)&addrs[i], true, t[i].ip, sizeof(t[i].ip));
    }
    return n;
}

/* health_check: absent (off), "off", empty (every default) or a map. */
static void read_health(struct sl_conf_ctx *ctx, const struct sl_node *n, struct sl_health_conf *h)
{
    static const char *const keys[] = {"path",    "host",      "interval", "timeout",
                                       "healthy", "unhealthy", "expect",   NULL};
    const struct sl_node *e;
    uint64_t v;

    h->path = "/";
    h->interval_ms = 5000;
    h->timeout_ms = 1000;
    h->healthy = 2;
    h->unhealthy = 3;
    h->expect_lo = 200;
    h->expect_hi = 399;
    if (n == NULL)
        return;
    if (n->type == SL_NODE_SCALAR && !n->quoted &&
        (strcmp(n->text, "off") == 0 || strcmp(n->text, "false") == 0))
        return;
    h->enabled = true;
    if (n->type == SL_NODE_NULL)
        return;
    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return;
    if (sl_conf_str(ctx, n, "path", &h->path, false) == 0 && h->path[0] != '/')
        sl_conf_error(ctx, sl_node_get(n, "path"), "a health check path must start with '/'");
    sl_conf_str(ctx, n, "host", &h->host, false);
    if (sl_conf_duration(ctx, n, "interval", &h->interval_ms, false) == 0 && h->interval_ms < 10)
        sl_conf_error(ctx, sl_node_get(n, "interval"), "must be at least 10ms");
    if (sl_conf_duration(ctx, n, "timeout", &h->timeout_ms, false) == 0 && h->timeout_ms == 0)
        sl_conf_error(ctx, sl_node_get(n, "timeout"), "must be more than 0");
    if (sl_conf_uint(ctx, n, "healthy", 1, 1000, &v, false) == 0)
        h->healthy = (uint32_t)v;
    if (sl_conf_uint(ctx, n, "unhealthy", 1, 1000, &v, false) == 0)
        h->unhealthy = (uint32_t)v;
    e = sl_node_get(n, "expect");
    if (e != NULL && !e->invalid) {
        unsigned lo, hi;
        int used = 0;

        if (e->type == SL_NODE_SCALAR && sscanf(e->text, "%u-%u%n", &lo, &hi, &used) == 2 &&
            (size_t)used == e->len && lo >= 100 && hi <= 599 && lo <= hi) {
            h->expect_lo = (uint16_t)lo;
            h->expect_hi = (uint16_t)hi;
        } else if (e->type == SL_NODE_SCALAR && sscanf(e->text, "%u%n", &lo, &used) == 1 &&
                   (size_t)used == e->len && lo >= 100 && lo <= 599) {
            h->expect_lo = h->expect_hi = (uint16_t)lo;
        } else {
            sl_conf_error(ctx, e, "expected a status such as 200 or a range such as 200-399");
        }
    }
}

static void read_upstream(struct sl_conf_ctx *ctx, const struct sl_node *n,
                          struct sl_upstream_conf *u)
{
    static const char *const keys[] = {
        "balance",      "hash_key", "targets",          "keepalive", "timeouts", "retries",
        "health_check", "passive",  "resolve_interval", "tls",       NULL};
    static const char *const tkeys[] = {"connect", "read", "send", NULL};
    static const char *const pkeys[] = {"failures", "eject", NULL};
    static const char *const balances[] = {"round_robin", "least_conn", "hash", "p2c", NULL};
    const struct sl_node *targets, *t, *p;
    uint64_t v;
    int b;

    u->name = n->key;
    u->keepalive = 64;
    u->connect_ms = 2000;
    u->read_ms = 30000;
    u->send_ms = 30000;
    u->retries = 1;
    u->hash_key = (struct sl_key){SL_KEY_IP, NULL, "ip"};
    u->passive_eject_ms = 30000;
    u->resolve_interval_ms = 30000;
    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return;
    if (sl_conf_enum(ctx, n, "balance", balances, &b, false) == 0)
        u->balance = (enum sl_balance)b;
    if (sl_conf_key(ctx, n, "hash_key", SL_KEYS_ALL & ~(1u << SL_KEY_ROUTE), &u->hash_key, false) ==
            0 &&
        u->balance != SL_BALANCE_HASH)
        sl_conf_warn(ctx, sl_node_get(n, "hash_key"), "only used with balance: hash");
    if (sl_conf_uint(ctx, n, "keepalive", 0, 100000, &v, false) == 0)
        u->keepalive = (uint32_t)v;
    if (sl_conf_uint(ctx, n, "retries", 0, 100, &v, false) == 0)
        u->retries = (uint32_t)v;
    t = sl_node_get(n, "timeouts");
    if (t != NULL && (sl_conf_keys(ctx, t, tkeys) == 0 || t->type == SL_NODE_MAP)) {
        sl_conf_duration(ctx, t, "connect", &u->connect_ms, false);
        sl_conf_duration(ctx, t, "read", &u->read_ms, false);
        sl_conf_duration(ctx, t, "send", &u->send_ms, false);
    }
    read_health(ctx, sl_node_get(n, "health_check"), &u->health);
    if (sl_node_get(n, "tls") != NULL)
        u->tls = sl__tls_client_conf(ctx, sl_node_get(n, "tls"));
    p = sl_node_get(n, "passive");
    if (p != NULL && (sl_conf_keys(ctx, p, pkeys) == 0 || p->type == SL_NODE_MAP)) {
        u->passive_failures = 5;
        if (sl_conf_uint(ctx, p, "failures", 0, 1000, &v, false) == 0)
            u->passive_failures = (uint32_t)v;
        sl_conf_duration(ctx, p, "eject", &u->passive_eject_ms, false);
    }
    if (sl_conf_duration(ctx, n, "resolve_interval", &u->resolve_interval_ms, false) == 0 &&
        u->resolve_interval_ms != 0 && u->resolve_interval_ms < 1000)
        sl_conf_error(ctx, sl_node_get(n, "resolve_interval"), "must be 0 (never) or at least 1s");
    targets = sl_node_get(n, "targets");
    if (targets == NULL) {
        sl_conf_error(ctx, n, "targets: an upstream needs at least one target");
        return;
    }
    if (targets->type != SL_NODE_SEQ || targets->n == 0) {
        sl_conf_error(ctx, targets, "expected a list of targets such as - address: 10.0.0.1:80");
        return;
    }
    u->targets = sl_arena_calloc(ctx->arena, targets->n * SL_RESOLVE_MAX * sizeof(*u->targets));
    for (size_t i = 0; i < targets->n; i++) {
        size_t added = read_target(ctx, targets->items[i], &u->targets[u->n_targets]);

        /* The same address twice would be one target counted twice. */
        for (size_t k = u->n_targets; k < u->n_targets + added; k++) {
            for (size_t j = 0; j < u->n_targets; j++) {
                if (strcmp(u->targets[j].ip, u->targets[k].ip) == 0) {
                    sl_conf_error(ctx, targets->items[i], "target %s is already listed%s",
                                  u->targets[k].ip,
                                  u->targets[k].from_name ? " (through a host name)" : "");
                    break;
                }
            }
        }
        u->n_targets += added;
    }
    if (u->n_targets > 256)
        sl_conf_error(ctx, targets, "at most 256 targets per upstream, found %zu", u->n_targets);
}

void sl__config_read_upstreams(struct sl_conf_ctx *ctx, const struct sl_node *root,
                               struct sl_config *c)
{
    const struct sl_node *n = sl_node_get(root, "upstreams");

    if (n == NULL)
        return;
    if (n->type != SL_NODE_MAP) {
        sl_conf_error(ctx, n, "expected a map of upstream names to upstreams");
        return;
    }
    c->upstreams = sl_arena_calloc(ctx->arena, (n->n ? n->n : 1) * sizeof(*c->upstreams));
    for (size_t i = 0; i < n->n; i++) {
        c->upstreams[i].index = (uint32_t)i;
        read_upstream(ctx, n->items[i], &c->upstreams[i]);
    }
    c->n_upstreams = n->n;
}
