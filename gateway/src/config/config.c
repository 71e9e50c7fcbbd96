/*
 * The core's part of the YAML contract. Each section has its own reader; each
 * reader checks every key it is given and carries on after an error, so that
 * one run reports every mistake in the file.
 */
#include "config/config.h"

#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf_read.h"
#include "base/log.h"
#include "upstream/resolve.h"
#include "tls/tls.h"
#include "base/util.h"

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

/* access_sample: N in map, a whole number from 1 (every line) up. */
static void read_sample(struct sl_conf_ctx *ctx, const struct sl_node *map, uint32_t *out)
{
    uint64_t v;

    if (sl_conf_uint(ctx, map, "access_sample", 0, 1000000000, &v, false) != 0)
        return;
    if (v == 0)
        sl_conf_error(ctx, sl_node_get(map, "access_sample"),
                      "must be 1 or more: N logs 1 in N successful requests and every error, 1 "
                      "logs them all (access: off turns the access log off)");
    else
        *out = (uint32_t)v;
}

void sl__config_read_route_log(struct sl_conf_ctx *ctx, const struct sl_node *n,
                               struct sl_route_conf *r)
{
    static const char *const keys[] = {"access_sample", NULL};

    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return;
    read_sample(ctx, n, &r->access_sample);
}

static void read_log(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    static const char *const keys[] = {"level",         "access",        "error", "format",
                                       "access_sample", "access_buffer", NULL};
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    int format = 0;
    const struct sl_node *n = sl_node_get(root, "log");
    const char *access = "stdout", *error = NULL;
    int level = SL_LOG_INFO;

    c->log_level = SL_LOG_INFO;
    c->access_log = SL_ACCESS_STDOUT;
    c->access_sample = 1;
    c->access_buffer = 1024 * 1024;
    if (n == NULL || (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP))
        return;
    read_sample(ctx, n, &c->access_sample);
    if (sl_conf_size(ctx, n, "access_buffer", &c->access_buffer, false) == 0 &&
        (c->access_buffer < 4096 || c->access_buffer > 1024 * 1024 * 1024)) {
        sl_conf_error(ctx, sl_node_get(n, "access_buffer"), "must be between 4k and 1g");
        c->access_buffer = 1024 * 1024;
    }
    if (sl_conf_enum(ctx, n, "level", levels, &level, false) == 0)
        c->log_level = level;
    if (sl_conf_enum(ctx, n, "format", formats, &format, false) == 0)
        c->log_json = format == 1;
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

/* user: and group: should name an account and a group this system has. A
 * warning, not an error: a config is often checked where the gateway does
 * not run (a build machine, an image being made); starting without the
 * account fails, saying so, and a reload never changes the user. */
static void read_identity(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    if (sl_conf_str(ctx, root, "user", &c->user, false) == 0 && getpwnam(c->user) == NULL)
        sl_conf_warn(ctx, sl_node_get(root, "user"),
                     "no user \"%s\" on this system: the gateway cannot start as it", c->user);
    if (sl_conf_str(ctx, root, "group", &c->group, false) == 0 && getgrnam(c->group) == NULL)
        sl_conf_warn(ctx, sl_node_get(root, "group"),
                     "no group \"%s\" on this system: the gateway cannot start with it", c->group);
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

static void read_trusted(struct sl_conf_ctx *ctx, const struct sl_node *root, struct sl_config *c)
{
    const char **list;
    size_t n;

    if (sl_conf_strlist(ctx, root, "trusted_proxies", &list, &n, false) != 0)
        return;
    c->trusted = sl_arena_calloc(ctx->arena, (n ? n : 1) * sizeof(*c->trusted));
    for (size_t i = 0; i < n; i++) {
        const struct sl_node *l = sl_node_get(root, "trusted_proxies");

        if (sl__cidr_parse(list[i], &c->trusted[c->n_trusted]) != 0)
            sl_conf_error(ctx, l->type == SL_NODE_SEQ ? l->items[i] : l,
                          "expected an address or a block such as 10.0.0.0/8, found \"%s\"",
                          list[i]);
        else
            c->n_trusted++;
    }
}

static int find_upstream(struct sl_conf_ctx *ctx, const char *name, unsigned *index, size_t *known)
{
    const struct sl_config *c = ctx->config;

    *known = c->n_upstreams;
    for (size_t i = 0; i < c->n_upstreams; i++) {
        if (strcmp(c->upstreams[i].name, name) == 0) {
            *index = (unsigned)i;
            return 0;
        }
    }
    return -1;
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
                                       "user",
                                       "group",
                                       NULL};
    struct sl_config *c = sl_arena_calloc(ctx->arena, sizeof(*c));

    ctx->root = root;
    ctx->owned = &c->headers.owned; /* before any plugin is read */
    ctx->read_redis = read_redis;
    ctx->find_upstream = find_upstream;
    ctx->config = c;
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
    read_identity(ctx, root, c);
    read_admin(ctx, root, c);
    c->redis = sl_conf_redis(ctx);
    read_trusted(ctx, root, c);
    sl__header_policy_read(ctx, root, &c->headers);
    sl__config_read_upstreams(ctx, root, c);
    sl__config_read_routes(ctx, root, c);
    return c;
}
