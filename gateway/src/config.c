/*
 * The core's part of the YAML contract. Each section has its own reader; each
 * reader checks every key it is given and carries on after an error, so that
 * one run reports every mistake in the file.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <llhttp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "conf_read.h"
#include "resolve.h"
#include "tls.h"
#include "log.h"
#include "plugins.h"
#include "util.h"

void sl__addr_str(const struct sockaddr *sa, bool port, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;

        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        p = ntohs(in->sin_port);
        if (port)
            snprintf(buf, size, "%s:%u", ip, p);
        else
            snprintf(buf, size, "%s", ip);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        p = ntohs(in6->sin6_port);
        if (port)
            snprintf(buf, size, "[%s]:%u", ip, p);
        else
            snprintf(buf, size, "%s", ip);
    } else {
        snprintf(buf, size, "unix");
    }
}

/* One address for a listener; "*:port" listens on every IPv4 address. */
static int listen_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **why)
{
    char host[256];
    uint16_t port;
    size_t n;
    bool is_name;

    if (sl__split_hostport(s, host, sizeof(host), &port, why) != 0)
        return -1;
    if (sl__resolve(host, port, true, false, ss, 1, &n, &is_name, why) != 0)
        return -1;
    *len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return 0;
}

/* -- top level scalars ---------------------------------------------------- */

static void read_workers(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    const struct sl_node *n = sl_node_get(root, "workers");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t v;

    c->workers = cpus > 0 ? (uint32_t)cpus : 1;
    if (n == NULL || (n->type == SL_NODE_SCALAR && strcmp(n->text, "auto") == 0))
        return;
    if (sl_conf_uint(ctx, root, "workers", 1, 1024, &v, false) == 0)
        c->workers = (uint32_t)v;
}

static void read_listen(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    static const char *const keys[] = {"address", "tls", NULL};
    const struct sl_node *list = sl_node_get(root, "listen");

    if (list == NULL) {
        sl_conf_error(ctx, root, "listen: at least one listener is required");
        return;
    }
    if (list->type != SL_NODE_SEQ || list->n == 0) {
        sl_conf_error(ctx, list, "expected a list of listeners such as - address: 0.0.0.0:8080");
        return;
    }
    c->listen = sl_arena_calloc(ctx->arena, list->n * sizeof(*c->listen));
    for (size_t i = 0; i < list->n; i++) {
        const struct sl_node *item = list->items[i], *addr;
        struct sl_listen_conf *l = &c->listen[c->n_listen];
        const char *why;

        if (sl_conf_keys(ctx, item, keys) != 0 && item->type != SL_NODE_MAP)
            continue;
        if (sl_conf_str(ctx, item, "address", &l->address, true) != 0)
            continue;
        addr = sl_node_get(item, "address");
        if (listen_addr(l->address, &l->addr, &l->addrlen, &why) != 0) {
            sl_conf_error(ctx, addr, "%s, found \"%s\"", why, l->address);
            continue;
        }
        for (size_t j = 0; j < c->n_listen; j++) {
            if (c->listen[j].addrlen == l->addrlen &&
                memcmp(&c->listen[j].addr, &l->addr, l->addrlen) == 0) {
                sl_conf_error(ctx, addr, "address \"%s\" is already listened on (listen[%zu])",
                              l->address, j);
                break;
            }
        }
        if (sl_node_get(item, "tls") != NULL)
            l->tls = sl__tls_server_conf(ctx, sl_node_get(item, "tls"));
        l->node = item;
        c->n_listen++;
    }
}

static void read_limits(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    static const char *const keys[] = {"max_header_bytes", "max_body_bytes", "max_connections",
                                       NULL};
    const struct sl_node *n = sl_node_get(root, "limits");
    uint64_t v;

    c->max_header_bytes = 16 * 1024;
    c->max_body_bytes = 10 * 1024 * 1024;
    c->max_connections = 20000;
    if (n == NULL || (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP))
        return;
    if (sl_conf_size(ctx, n, "max_header_bytes", &c->max_header_bytes, false) == 0 &&
        (c->max_header_bytes < 1024 || c->max_header_bytes > 1024 * 1024))
        sl_conf_error(ctx, sl_node_get(n, "max_header_bytes"), "must be between 1k and 1m");
    sl_conf_size(ctx, n, "max_body_bytes", &c->max_body_bytes, false);
    if (sl_conf_uint(ctx, n, "max_connections", 1, 10000000, &v, false) == 0)
        c->max_connections = (uint32_t)v;
}

static void read_timeouts(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    static const char *const keys[] = {"client_header", "client_body", "client_idle", "client_send",
                                       NULL};
    const struct sl_node *n = sl_node_get(root, "timeouts");

    c->client_header_ms = 10000;
    c->client_body_ms = 30000;
    c->client_idle_ms = 60000;
    c->client_send_ms = 60000;
    if (n == NULL || (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP))
        return;
    sl_conf_duration(ctx, n, "client_header", &c->client_header_ms, false);
    sl_conf_duration(ctx, n, "client_body", &c->client_body_ms, false);
    sl_conf_duration(ctx, n, "client_idle", &c->client_idle_ms, false);
    sl_conf_duration(ctx, n, "client_send", &c->client_send_ms, false);
}

static void read_log(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    static const char *const keys[] = {"level", "access", "error", NULL};
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    const struct sl_node *n = sl_node_get(root, "log");
    const char *access = "stdout", *error = NULL;
    int level = SL_LOG_INFO;

    c->log_level = SL_LOG_INFO;
    c->access_log = SL_ACCESS_STDOUT;
    if (n == NULL || (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP))
        return;
    if (sl_conf_enum(ctx, n, "level", levels, &level, false) == 0)
        c->log_level = level;
    if (sl_conf_str(ctx, n, "access", &access, false) == 0) {
        if (strcmp(access, "off") == 0) {
            c->access_log = SL_ACCESS_OFF;
        } else if (strcmp(access, "stdout") != 0) {
            c->access_log = SL_ACCESS_FILE;
            c->access_log_path = access;
        }
    } else if (sl_node_get(n, "access") && sl_node_get(n, "access")->type == SL_NODE_SCALAR) {
        c->access_log = SL_ACCESS_OFF; /* "access: false" */
    }
    if (sl_conf_str(ctx, n, "error", &error, false) == 0 && strcmp(error, "stderr") != 0)
        c->error_log_path = error;
}

/* -- upstreams ------------------------------------------------------------- */

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

static void read_upstreams(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
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

/* -- plugins ---------------------------------------------------------------- */

/*
 * Read a "plugins:" map into uses (one slot per built-in plugin, indexed by
 * plugin id). A plugin set to false is recorded with conf == NULL and the
 * plugin pointer set, which a route uses to turn a default off.
 */
static void read_plugins(struct sl_conf_ctx *ctx, const struct sl_node *n,
                         struct sl_plugin_use *uses)
{
    if (n->type != SL_NODE_MAP) {
        sl_conf_error(ctx, n, "expected a map of plugin names to their settings");
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct sl_node *p = n->items[i];
        const struct sl_plugin *pl;
        size_t id;

        pl = sl__plugin_find(p->key, &id);
        if (pl == NULL) {
            char known[256] = "";
            size_t len = 0;

            for (size_t j = 0; j < sl__n_plugins && len < sizeof(known); j++) {
                int r = snprintf(known + len, sizeof(known) - len, "%s%s", j ? ", " : "",
                                 sl__plugins[j]->name);

                if (r > 0)
                    len += (size_t)r;
            }
            sl__conf_error_key(ctx, p, "unknown plugin (built in: %s)", known[0] ? known : "none");
            continue;
        }
        uses[id].plugin = pl;
        if (p->type == SL_NODE_SCALAR && !p->quoted &&
            (strcmp(p->text, "false") == 0 || strcmp(p->text, "off") == 0)) {
            uses[id].conf = NULL;
            continue;
        }
        if (p->type == SL_NODE_NULL) {
            /* "request_id:" with nothing after it means defaults. */
            static const struct sl_node empty = {.type = SL_NODE_MAP};
            struct sl_node *e = sl_arena_alloc(ctx->arena, sizeof(*e));

            *e = empty;
            e->line = p->line;
            e->col = p->col;
            e->key = p->key;
            e->parent = p->parent;
            e->index = -1;
            p = e;
        }
        uses[id].conf = pl->conf_parse(ctx, p);
        if (uses[id].conf == NULL)
            uses[id].plugin = NULL; /* its errors were reported */
        else if (pl->conf_free != NULL)
            sl__conf_on_free(ctx, pl->conf_free, uses[id].conf);
    }
}

/* Compact a per-id array of uses into the enabled ones, in table order. */
static void compact_uses(struct sl_conf_ctx *ctx, const struct sl_plugin_use *uses,
                         struct sl_plugin_use **out, size_t *n)
{
    size_t count = 0;

    for (size_t i = 0; i < sl__n_plugins; i++)
        if (uses[i].plugin != NULL && uses[i].conf != NULL)
            count++;
    *out = sl_arena_alloc(ctx->arena, (count ? count : 1) * sizeof(**out));
    *n = 0;
    for (size_t i = 0; i < sl__n_plugins; i++)
        if (uses[i].plugin != NULL && uses[i].conf != NULL)
            (*out)[(*n)++] = uses[i];
}

/* -- admin, redis and trusted proxies ------------------------------------------ */

static void read_admin(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    static const char *const keys[] = {"address", "token", NULL};
    const struct sl_node *n = sl_node_get(root, "admin");
    const char *why;

    if (n == NULL || n->type == SL_NODE_NULL)
        return;
    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return;
    c->admin_address = "127.0.0.1:9901";
    sl_conf_str(ctx, n, "address", &c->admin_address, false);
    if (listen_addr(c->admin_address, &c->admin_addr, &c->admin_addrlen, &why) != 0) {
        sl_conf_error(ctx, sl_node_get(n, "address") ? sl_node_get(n, "address") : n,
                      "%s, found \"%s\"", why, c->admin_address);
        c->admin_address = NULL;
    }
    sl_conf_str(ctx, n, "token", &c->admin_token, false);
    for (size_t i = 0; c->admin_address && i < c->n_listen; i++)
        if (c->listen[i].addrlen == c->admin_addrlen &&
            memcmp(&c->listen[i].addr, &c->admin_addr, c->admin_addrlen) == 0)
            sl_conf_error(ctx, sl_node_get(n, "address") ? sl_node_get(n, "address") : n,
                          "the admin API needs an address of its own, not listen[%zu]'s", i);
}

/*
 * The top-level redis: section, read once, on first demand: by a plugin
 * through sl_conf_redis() (whatever the order of the file's sections or of
 * the reading code), or by sl__config_parse() itself.
 */
static const struct sl_redis_conf *read_redis(struct sl_conf_ctx *ctx)
{
    static const char *const keys[] = {"address", "password", "db", "timeout", NULL};
    const struct sl_node *n = sl_node_get(ctx->root, "redis");
    struct sl_redis_conf *r;
    uint64_t db = 0;
    const char *why;

    if (n == NULL || n->type == SL_NODE_NULL)
        return NULL;
    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return NULL;
    r = sl_arena_calloc(ctx->arena, sizeof(*r));
    r->timeout_ms = 50;
    if (sl_conf_str(ctx, n, "address", &r->address, true) == 0) {
        if (strncmp(r->address, "unix:", 5) == 0) {
            r->unix_path = r->address + 5;
            if (r->unix_path[0] != '/')
                sl_conf_error(ctx, sl_node_get(n, "address"),
                              "expected unix:/absolute/path, found \"%s\"", r->address);
        } else {
            char host[256];

            if (sl__split_hostport(r->address, host, sizeof(host), &r->port, &why) != 0 ||
                (r->port == 0 && (why = "port must be a number from 1 to 65535")))
                sl_conf_error(ctx, sl_node_get(n, "address"), "%s, found \"%s\"", why, r->address);
            else
                r->host = sl_arena_strndup(ctx->arena, host, strlen(host));
        }
    }
    sl_conf_str(ctx, n, "password", &r->password, false);
    if (r->password != NULL && r->password[0] == '\0')
        r->password = NULL; /* "${REDIS_PASSWORD:-}" unset: no AUTH */
    if (sl_conf_uint(ctx, n, "db", 0, 1000000, &db, false) == 0)
        r->db = (uint32_t)db;
    if (sl_conf_duration(ctx, n, "timeout", &r->timeout_ms, false) == 0 && r->timeout_ms == 0)
        sl_conf_error(ctx, sl_node_get(n, "timeout"), "must be more than 0");
    return r;
}

static int parse_cidr(const char *s, struct sl_cidr *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    long prefix;
    char *end;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        prefix = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        long max = prefix;

        prefix = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || prefix < 0 || prefix > max)
            return -1;
    }
    out->prefix = (uint8_t)prefix;
    return 0;
}

bool sl__cidr_match(const struct sl_cidr *c, size_t n, const struct sockaddr *sa)
{
    const uint8_t *a;
    uint8_t v4mapped[4];
    int family = sa->sa_family;

    if (family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
            memcpy(v4mapped, a + 12, 4);
            a = v4mapped;
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned full = c[i].prefix / 8, rest = c[i].prefix % 8;

        if (c[i].family != family || memcmp(c[i].addr, a, full) != 0)
            continue;
        if (rest == 0 || ((c[i].addr[full] ^ a[full]) & (0xff << (8 - rest))) == 0)
            return true;
    }
    return false;
}

static void read_trusted(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    const char **list;
    size_t n;

    if (sl_conf_strlist(ctx, root, "trusted_proxies", &list, &n, false) != 0)
        return;
    c->trusted = sl_arena_calloc(ctx->arena, (n ? n : 1) * sizeof(*c->trusted));
    for (size_t i = 0; i < n; i++) {
        const struct sl_node *l = sl_node_get(root, "trusted_proxies");

        if (parse_cidr(list[i], &c->trusted[c->n_trusted]) != 0)
            sl_conf_error(ctx, l->type == SL_NODE_SEQ ? l->items[i] : l,
                          "expected an address or a block such as 10.0.0.0/8, found \"%s\"",
                          list[i]);
        else
            c->n_trusted++;
    }
}

/* -- routes ----------------------------------------------------------------- */

static void free_regex(void *code)
{
    pcre2_code_free(code);
}

static bool valid_host_pattern(const char *h)
{
    const char *p = h;

    if (p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0')
            return false;
        p += 2;
    }
    for (; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_'))
            return false;
    return p != h;
}

static void read_match(struct sl_conf_ctx *ctx, const struct sl_node *m, struct sl_route_conf *r)
{
    static const char *const keys[] = {"host",    "path",    "path_exact", "path_regex",
                                       "methods", "headers", NULL};
    const struct sl_node *n;
    const char **methods;
    size_t n_methods, paths = 0;

    if (sl_conf_keys(ctx, m, keys) != 0 && m->type != SL_NODE_MAP)
        return;
    if (sl_conf_str(ctx, m, "host", &r->host, false) == 0) {
        char *lower = sl_arena_strndup(ctx->arena, r->host, strlen(r->host));

        for (char *p = lower; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        r->host = lower;
        if (!valid_host_pattern(lower)) {
            sl_conf_error(ctx, sl_node_get(m, "host"),
                          "expected a host name such as api.example.com or *.example.com");
            r->host = NULL;
        }
    }
    if (sl_conf_str(ctx, m, "path", &r->path, false) == 0) {
        paths++;
        if (r->path[0] != '/')
            sl_conf_error(ctx, sl_node_get(m, "path"), "a path prefix must start with '/'");
    }
    if (sl_conf_str(ctx, m, "path_exact", &r->path_exact, false) == 0) {
        paths++;
        if (r->path_exact[0] != '/')
            sl_conf_error(ctx, sl_node_get(m, "path_exact"), "a path must start with '/'");
    }
    if (sl_conf_str(ctx, m, "path_regex", &r->path_regex, false) == 0) {
        int err;
        PCRE2_SIZE off;
        pcre2_code *code;

        paths++;
        code = pcre2_compile((PCRE2_SPTR)r->path_regex, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (code == NULL) {
            PCRE2_UCHAR msg[256];

            pcre2_get_error_message(err, msg, sizeof(msg));
            sl_conf_error(ctx, sl_node_get(m, "path_regex"),
                          "bad regular expression at offset %zu: %s", (size_t)off,
                          (const char *)msg);
        } else {
            pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
            r->regex = code;
            sl__conf_on_free(ctx, free_regex, code);
        }
    }
    if (paths > 1)
        sl_conf_error(ctx, m, "use only one of path, path_exact and path_regex");
    if (sl_conf_strlist(ctx, m, "methods", &methods, &n_methods, false) == 0) {
        for (size_t i = 0; i < n_methods; i++) {
            int k;

            for (k = 0; k <= HTTP_FLUSH; k++)
                if (strcmp(llhttp_method_name((llhttp_method_t)k), methods[i]) == 0)
                    break;
            if (k > HTTP_FLUSH) {
                const struct sl_node *mn = sl_node_get(m, "methods");

                sl_conf_error(ctx, mn->type == SL_NODE_SEQ ? mn->items[i] : mn,
                              "unknown HTTP method \"%s\" (methods are upper case)", methods[i]);
                continue;
            }
            r->methods |= 1ull << k;
        }
    }
    n = sl_node_get(m, "headers");
    if (n != NULL) {
        if (n->type != SL_NODE_MAP) {
            sl_conf_error(ctx, n, "expected a map of header names to values");
        } else {
            r->headers = sl_arena_calloc(ctx->arena, (n->n ? n->n : 1) * sizeof(*r->headers));
            for (size_t i = 0; i < n->n; i++) {
                if (sl_conf_node_str(ctx, n->items[i], &r->headers[r->n_headers].value) != 0)
                    continue;
                r->headers[r->n_headers++].name = n->items[i]->key;
            }
        }
    }
}

static void read_route(struct sl_conf_ctx *ctx, const struct sl_node *n, struct sl_config *c,
                       struct sl_route_conf *r, const struct sl_plugin_use *defaults)
{
    static const char *const keys[] = {"name",         "match",   "upstream",
                                       "strip_prefix", "plugins", NULL};
    struct sl_plugin_use *uses;
    const struct sl_node *m, *p;
    const char *up;

    r->node = n;
    r->name = sl_arena_printf(ctx->arena, "route%u", r->index);
    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return;
    sl_conf_str(ctx, n, "name", &r->name, false);
    m = sl_node_get(n, "match");
    if (m != NULL)
        read_match(ctx, m, r);
    if (sl_conf_str(ctx, n, "upstream", &up, true) == 0) {
        for (size_t i = 0; i < c->n_upstreams; i++)
            if (strcmp(c->upstreams[i].name, up) == 0)
                r->upstream = &c->upstreams[i];
        if (r->upstream == NULL)
            sl_conf_error(ctx, sl_node_get(n, "upstream"), "unknown upstream \"%s\"%s", up,
                          c->n_upstreams ? "" : " (no upstreams are defined)");
    }
    if (sl_conf_str(ctx, n, "strip_prefix", &r->strip_prefix, false) == 0 &&
        (r->strip_prefix[0] != '/' || strcmp(r->strip_prefix, "/") == 0))
        sl_conf_error(ctx, sl_node_get(n, "strip_prefix"), "expected a path prefix such as /v1");

    uses = sl_arena_alloc(ctx->arena, (sl__n_plugins + 1) * sizeof(*uses));
    memcpy(uses, defaults, sl__n_plugins * sizeof(*uses));
    p = sl_node_get(n, "plugins");
    if (p != NULL)
        read_plugins(ctx, p, uses);
    compact_uses(ctx, uses, &r->plugins, &r->n_plugins);
}

static void read_routes(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    const struct sl_node *n = sl_node_get(root, "routes"), *p;
    struct sl_plugin_use *defaults;

    defaults = sl_arena_calloc(ctx->arena, (sl__n_plugins + 1) * sizeof(*defaults));
    p = sl_node_get(root, "plugins");
    if (p != NULL)
        read_plugins(ctx, p, defaults);
    compact_uses(ctx, defaults, &c->default_plugins, &c->n_default_plugins);

    if (n == NULL)
        return;
    if (n->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, n, "expected a list of routes");
        return;
    }
    c->routes = sl_arena_calloc(ctx->arena, (n->n ? n->n : 1) * sizeof(*c->routes));
    for (size_t i = 0; i < n->n; i++) {
        struct sl_route_conf *r = &c->routes[i];

        r->index = (uint32_t)i;
        read_route(ctx, n->items[i], c, r, defaults);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->routes[j].name, r->name) == 0) {
                sl_conf_error(ctx, sl_node_get(n->items[i], "name"),
                              "route name \"%s\" is already used by routes[%zu]", r->name, j);
                break;
            }
        }
    }
    c->n_routes = n->n;
}

struct sl_config *sl__config_parse(struct sl_conf_ctx *ctx, const struct sl_node *root)
{
    static const char *const keys[] = {"workers",
                                       "shutdown_timeout",
                                       "listen",
                                       "limits",
                                       "timeouts",
                                       "log",
                                       "admin",
                                       "redis",
                                       "trusted_proxies",
                                       "upstreams",
                                       "plugins",
                                       "routes",
                                       "headers_with_underscores",
                                       "request_trailers",
                                       "via",
                                       NULL};
    struct sl_config *c = sl_arena_calloc(ctx->arena, sizeof(*c));

    ctx->root = root;
    ctx->headers = &c->headers; /* before any plugin is read */
    ctx->read_redis = read_redis;
    c->shutdown_timeout_ms = 30000;
    if (root->type != SL_NODE_MAP) {
        sl_conf_error(ctx, root, "the file must be a map of settings such as listen: and routes:");
        return c;
    }
    sl_conf_keys(ctx, root, keys);
    read_workers(ctx, root, c);
    sl_conf_duration(ctx, root, "shutdown_timeout", &c->shutdown_timeout_ms, false);
    read_listen(ctx, root, c);
    read_limits(ctx, root, c);
    read_timeouts(ctx, root, c);
    read_log(ctx, root, c);
    read_admin(ctx, root, c);
    c->redis = sl_conf_redis(ctx);
    read_trusted(ctx, root, c);
    sl__header_policy_read(ctx, root, &c->headers);
    read_upstreams(ctx, root, c);
    read_routes(ctx, root, c);
    return c;
}
