/*
 * sl__config_diff(): the top-level settings, the listeners and the
 * upstreams of two configs, compared as the core parsed them. The routes
 * and the plugins are in diff_routes.c.
 */
#include "config/diff.h"

#include <stdio.h>
#include <string.h>

#include "config/diff_fields.h"
#include "config/diff_routes.h"

/* -- top-level settings --------------------------------------------------------- */

/* A change of the top-level setting key, whose fields are read under it
 * on each side (to tell values from ${VAR}). */
static struct sl_diff_change *setting(struct sl_diff *d, const char *key, const struct sl_node *ra,
                                      const struct sl_node *rb)
{
    struct sl_diff_change *c = sl__diff_begin(d, "setting", key, SL_DIFF_CHANGED);

    sl__diff_from(d, sl_node_get(ra, key), sl_node_get(rb, key));
    return c;
}

static void restart_str(struct sl_diff *d, const char *key, const char *a, const char *b,
                        const struct sl_node *ra, const struct sl_node *rb)
{
    struct sl_diff_change *c = setting(d, key, ra, rb);

    if (a != b && (a == NULL || b == NULL || strcmp(a, b) != 0))
        sl__diff_detail(d, c, "%s -> %s (takes a restart: a reload keeps the running one)",
                        sl__diff_hidden(d, "") && a ? "(not shown)"
                        : a                         ? a
                                                    : "(unset)",
                        sl__diff_hidden(d, "") && b ? "(not shown)"
                        : b                         ? b
                                                    : "(unset)");
    sl__diff_end(d, c);
}

static void scalars(struct sl_diff *d, const struct sl_config *a, const struct sl_config *b)
{
    const struct sl_node *ra = sl__diff_root(a), *rb = sl__diff_root(b);
    struct sl_diff_change *c = setting(d, "workers", ra, rb);

    if (a->workers != b->workers && sl__diff_hidden(d, ""))
        sl__diff_detail(d, c,
                        "changed (not shown; takes a restart: a reload keeps the running "
                        "workers)");
    else if (a->workers != b->workers)
        sl__diff_detail(d, c, "%u -> %u (takes a restart: a reload keeps the running workers)",
                        a->workers, b->workers);
    sl__diff_end(d, c);
    c = setting(d, "shutdown_timeout", ra, rb);
    sl__diff_ms(d, c, "", a->shutdown_timeout_ms, b->shutdown_timeout_ms);
    sl__diff_end(d, c);
    restart_str(d, "user", a->user, b->user, ra, rb);
    restart_str(d, "group", a->group, b->group, ra, rb);

    c = setting(d, "limits", ra, rb);
    sl__diff_size(d, c, "max_header_bytes", a->max_header_bytes, b->max_header_bytes);
    sl__diff_size(d, c, "max_body_bytes", a->max_body_bytes, b->max_body_bytes);
    sl__diff_uint(d, c, "max_connections", a->max_connections, b->max_connections);
    sl__diff_end(d, c);

    c = setting(d, "timeouts", ra, rb);
    sl__diff_ms(d, c, "client_header", a->client_header_ms, b->client_header_ms);
    sl__diff_ms(d, c, "client_body", a->client_body_ms, b->client_body_ms);
    sl__diff_ms(d, c, "client_idle", a->client_idle_ms, b->client_idle_ms);
    sl__diff_ms(d, c, "client_send", a->client_send_ms, b->client_send_ms);
    sl__diff_end(d, c);
}

static const char *access_name(const struct sl_config *c)
{
    return c->access_log == SL_ACCESS_OFF    ? "off"
           : c->access_log == SL_ACCESS_FILE ? c->access_log_path
                                             : "stdout";
}

static void logs(struct sl_diff *d, const struct sl_config *a, const struct sl_config *b)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    struct sl_diff_change *c = setting(d, "log", sl__diff_root(a), sl__diff_root(b));

    if (a->log_level != b->log_level && a->log_level >= 0 && a->log_level <= 3 &&
        b->log_level >= 0 && b->log_level <= 3)
        sl__diff_str(d, c, "level", levels[a->log_level], levels[b->log_level]);
    sl__diff_str(d, c, "access", access_name(a), access_name(b));
    sl__diff_str(d, c, "error", a->error_log_path ? a->error_log_path : "stderr",
                 b->error_log_path ? b->error_log_path : "stderr");
    sl__diff_str(d, c, "format", a->log_json ? "json" : "text", b->log_json ? "json" : "text");
    sl__diff_end(d, c);
}

/* A section that may be absent on either side: added, removed or changed. */
static enum sl_diff_op presence(bool a, bool b)
{
    return a && b ? SL_DIFF_CHANGED : b ? SL_DIFF_ADDED : SL_DIFF_REMOVED;
}

static void admin_redis(struct sl_diff *d, const struct sl_config *a, const struct sl_config *b)
{
    const struct sl_node *ra = sl__diff_root(a), *rb = sl__diff_root(b);
    struct sl_diff_change *c;

    if (a->admin_address != NULL || b->admin_address != NULL) {
        c = sl__diff_begin(d, "setting", "admin",
                           presence(a->admin_address != NULL, b->admin_address != NULL));
        sl__diff_from(d, sl_node_get(ra, "admin"), sl_node_get(rb, "admin"));
        if (c->op == SL_DIFF_CHANGED) {
            sl__diff_str(d, c, "address", a->admin_address, b->admin_address);
            sl__diff_secret(d, c, "token", a->admin_token, b->admin_token);
        }
        sl__diff_end(d, c);
    }
    if (a->redis != NULL || b->redis != NULL) {
        const struct sl_redis_conf *x = a->redis, *y = b->redis;

        c = sl__diff_begin(d, "setting", "redis", presence(x != NULL, y != NULL));
        sl__diff_from(d, sl_node_get(ra, "redis"), sl_node_get(rb, "redis"));
        if (c->op == SL_DIFF_CHANGED) {
            sl__diff_str(d, c, "address", x->address, y->address);
            sl__diff_secret(d, c, "password", x->password, y->password);
            sl__diff_uint(d, c, "db", x->db, y->db);
            sl__diff_ms(d, c, "timeout", x->timeout_ms, y->timeout_ms);
        }
        sl__diff_end(d, c);
    }
}

static void header_settings(struct sl_diff *d, const struct sl_config *a, const struct sl_config *b)
{
    static const char *const underscores[] = {"drop", "reject", "allow"};
    const struct sl_node *ra = sl__diff_root(a), *rb = sl__diff_root(b);
    struct sl_diff_change *c;

    c = setting(d, "headers_with_underscores", ra, rb);
    sl__diff_str(d, c, "", underscores[a->headers.underscores],
                 underscores[b->headers.underscores]);
    sl__diff_end(d, c);
    c = setting(d, "request_trailers", ra, rb);
    sl__diff_str(d, c, "", a->headers.forward_trailers ? "forward" : "drop",
                 b->headers.forward_trailers ? "forward" : "drop");
    sl__diff_end(d, c);
    c = setting(d, "via", ra, rb);
    sl__diff_str(d, c, "", a->headers.via ? a->headers.via : "off",
                 b->headers.via ? b->headers.via : "off");
    sl__diff_end(d, c);
}

static void settings(struct sl_diff *d, const struct sl_diff_side *sa,
                     const struct sl_diff_side *sb)
{
    const struct sl_config *a = sa->conf, *b = sb->conf;
    struct sl_diff_change *c;

    scalars(d, a, b);
    logs(d, a, b);
    admin_redis(d, a, b);
    c = sl__diff_begin(d, "setting", "trusted_proxies", SL_DIFF_CHANGED);
    sl__diff_nodes(d, c, "", sl_node_get(sl__diff_root(a), "trusted_proxies"),
                   sl_node_get(sl__diff_root(b), "trusted_proxies"));
    sl__diff_end(d, c);
    header_settings(d, a, b);
}

/* -- listeners, by address -------------------------------------------------------- */

static const struct sl_listen_conf *find_listen(const struct sl_config *c,
                                                const struct sl_listen_conf *l)
{
    for (size_t i = 0; i < c->n_listen; i++)
        if (c->listen[i].addrlen == l->addrlen &&
            memcmp(&c->listen[i].addr, &l->addr, l->addrlen) == 0)
            return &c->listen[i];
    return NULL;
}

/* An opaque tls: section (a listener's, an upstream's): on, off, or what
 * changed in it. */
static void tls_section(struct sl_diff *d, struct sl_diff_change *c, bool on_a, bool on_b,
                        const struct sl_node *a, const struct sl_node *b)
{
    if (on_a != on_b)
        sl__diff_detail(d, c, "tls %s -> %s", on_a ? "on" : "off", on_b ? "on" : "off");
    else if (on_a)
        sl__diff_nodes(d, c, "tls", a, b);
}

/* A listener's name (its address), unless that came from ${VAR}. */
static const char *listen_name(const struct sl_listen_conf *l)
{
    return sl__diff_name(l->address, sl__diff_env(sl_node_get(l->node, "address")));
}

static void listeners(struct sl_diff *d, const struct sl_diff_side *sa,
                      const struct sl_diff_side *sb)
{
    const struct sl_config *a = sa->conf, *b = sb->conf;

    for (size_t i = 0; i < b->n_listen; i++) {
        const struct sl_listen_conf *l = &b->listen[i], *o = find_listen(a, l);
        struct sl_diff_change *c =
            sl__diff_begin(d, "listener", listen_name(l), o ? SL_DIFF_CHANGED : SL_DIFF_ADDED);

        if (o != NULL)
            tls_section(d, c, o->tls != NULL, l->tls != NULL, sl_node_get(o->node, "tls"),
                        sl_node_get(l->node, "tls"));
        else if (l->tls != NULL)
            sl__diff_detail(d, c, "tls");
        sl__diff_end(d, c);
    }
    for (size_t i = 0; i < a->n_listen; i++)
        if (find_listen(b, &a->listen[i]) == NULL)
            sl__diff_end(
                d, sl__diff_begin(d, "listener", listen_name(&a->listen[i]), SL_DIFF_REMOVED));
}

/* -- upstreams, by name ------------------------------------------------------------ */

static const struct sl_upstream_conf *find_upstream(const struct sl_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_upstreams; i++)
        if (strcmp(c->upstreams[i].name, name) == 0)
            return &c->upstreams[i];
    return NULL;
}

static const struct sl_target_conf *find_target(const struct sl_upstream_conf *u, const char *ip)
{
    for (size_t i = 0; i < u->n_targets; i++)
        if (strcmp(u->targets[i].ip, ip) == 0)
            return &u->targets[i];
    return NULL;
}

/* "127.0.0.1:9001", or "10.0.0.7:80 (users.internal:80)" for a name's. */
static void target_name(struct sl_sbuf *b, char sign, const struct sl_target_conf *t)
{
    sl__sbuf_printf(b, "%s%c%s", b->len ? ", " : "", sign, t->ip);
    if (t->from_name)
        sl__sbuf_printf(b, " (%s)", t->address);
    if (sign == '+' && t->weight != 1)
        sl__sbuf_printf(b, " weight %u", t->weight);
    if (sign == '+' && t->backup)
        sl__sbuf_lit(b, " backup");
}

static void targets(struct sl_diff *d, struct sl_diff_change *c, const struct sl_upstream_conf *a,
                    const struct sl_upstream_conf *b)
{
    size_t before = c->n_details;
    struct sl_sbuf set = {0};

    for (size_t i = 0; i < b->n_targets; i++)
        if (find_target(a, b->targets[i].ip) == NULL)
            target_name(&set, '+', &b->targets[i]);
    for (size_t i = 0; i < a->n_targets; i++)
        if (find_target(b, a->targets[i].ip) == NULL)
            target_name(&set, '-', &a->targets[i]);
    if (set.len)
        sl__diff_detail(d, c, "targets %.*s", (int)set.len, set.p);
    sl__sbuf_free(&set);
    for (size_t i = 0; i < b->n_targets; i++) {
        const struct sl_target_conf *t = &b->targets[i], *o = find_target(a, t->ip);
        char what[96];

        if (o == NULL)
            continue;
        snprintf(what, sizeof(what), "target %s weight", t->ip);
        sl__diff_uint(d, c, what, o->weight, t->weight);
        snprintf(what, sizeof(what), "target %s backup", t->ip);
        sl__diff_bool(d, c, what, o->backup, t->backup);
    }
    /* A target written with ${VAR} (its address, its weight): the details
     * just written would show it, or what it resolved to. */
    if (c->n_details > before && sl__diff_hidden(d, "targets")) {
        c->n_details = before;
        sl__diff_detail(d, c, "targets changed (not shown)");
    }
}

static void health(struct sl_diff *d, struct sl_diff_change *c, const struct sl_health_conf *a,
                   const struct sl_health_conf *b)
{
    char x[16], y[16];

    if (a->enabled != b->enabled && sl__diff_hidden_scalar(d, "health_check")) {
        sl__diff_detail(d, c, "health_check changed (not shown)");
        return;
    }
    if (a->enabled != b->enabled) {
        sl__diff_detail(d, c, "health_check %s -> %s", a->enabled ? "on" : "off",
                        b->enabled ? "on" : "off");
        return;
    }
    if (!a->enabled)
        return;
    sl__diff_str(d, c, "health_check.path", a->path, b->path);
    sl__diff_str(d, c, "health_check.host", a->host, b->host);
    sl__diff_ms(d, c, "health_check.interval", a->interval_ms, b->interval_ms);
    sl__diff_ms(d, c, "health_check.timeout", a->timeout_ms, b->timeout_ms);
    sl__diff_uint(d, c, "health_check.healthy", a->healthy, b->healthy);
    sl__diff_uint(d, c, "health_check.unhealthy", a->unhealthy, b->unhealthy);
    snprintf(x, sizeof(x), "%u-%u", a->expect_lo, a->expect_hi);
    snprintf(y, sizeof(y), "%u-%u", b->expect_lo, b->expect_hi);
    sl__diff_str(d, c, "health_check.expect", x, y);
}

/* The YAML node upstream u of c was read from. */
static const struct sl_node *upstream_node(const struct sl_config *c,
                                           const struct sl_upstream_conf *u)
{
    return sl_node_get(sl_node_get(sl__diff_root(c), "upstreams"), u->name);
}

/* An upstream's name (its key), unless that came from ${VAR}. */
static const char *upstream_name(const struct sl_config *c, const struct sl_upstream_conf *u)
{
    const struct sl_node *n = upstream_node(c, u);

    return sl__diff_name(u->name, n != NULL && n->key_from_env);
}

static void upstream(struct sl_diff *d, struct sl_diff_change *c, const struct sl_upstream_conf *a,
                     const struct sl_diff_side *sa, const struct sl_upstream_conf *b,
                     const struct sl_diff_side *sb)
{
    static const char *const balances[] = {"round_robin", "least_conn", "hash", "p2c"};
    const struct sl_node *na = upstream_node(sa->conf, a), *nb = upstream_node(sb->conf, b);
    bool passive_env;

    sl__diff_from(d, na, nb);
    passive_env = sl__diff_hidden_scalar(d, "passive");
    targets(d, c, a, b);
    sl__diff_str(d, c, "balance", balances[a->balance], balances[b->balance]);
    if (a->balance == SL_BALANCE_HASH || b->balance == SL_BALANCE_HASH)
        sl__diff_str(d, c, "hash_key", a->hash_key.text, b->hash_key.text);
    sl__diff_uint(d, c, "keepalive", a->keepalive, b->keepalive);
    sl__diff_ms(d, c, "timeouts.connect", a->connect_ms, b->connect_ms);
    sl__diff_ms(d, c, "timeouts.read", a->read_ms, b->read_ms);
    sl__diff_ms(d, c, "timeouts.send", a->send_ms, b->send_ms);
    sl__diff_uint(d, c, "retries", a->retries, b->retries);
    health(d, c, &a->health, &b->health);
    if ((a->passive_failures != 0) != (b->passive_failures != 0) && passive_env) {
        sl__diff_detail(d, c, "passive changed (not shown)");
    } else if ((a->passive_failures != 0) != (b->passive_failures != 0)) {
        sl__diff_detail(d, c, "passive %s -> %s", a->passive_failures ? "on" : "off",
                        b->passive_failures ? "on" : "off");
    } else if (a->passive_failures != 0) {
        sl__diff_uint(d, c, "passive.failures", a->passive_failures, b->passive_failures);
        sl__diff_ms(d, c, "passive.eject", a->passive_eject_ms, b->passive_eject_ms);
    }
    sl__diff_ms(d, c, "resolve_interval", a->resolve_interval_ms, b->resolve_interval_ms);
    tls_section(d, c, a->tls != NULL, b->tls != NULL, sl_node_get(na, "tls"),
                sl_node_get(nb, "tls"));
}

static void upstreams(struct sl_diff *d, const struct sl_diff_side *sa,
                      const struct sl_diff_side *sb)
{
    const struct sl_config *a = sa->conf, *b = sb->conf;

    for (size_t i = 0; i < b->n_upstreams; i++) {
        const struct sl_upstream_conf *u = &b->upstreams[i], *o = find_upstream(a, u->name);
        struct sl_diff_change *c =
            sl__diff_begin(d, "upstream", upstream_name(b, u), o ? SL_DIFF_CHANGED : SL_DIFF_ADDED);

        if (o != NULL)
            upstream(d, c, o, sa, u, sb);
        sl__diff_end(d, c);
    }
    for (size_t i = 0; i < a->n_upstreams; i++)
        if (find_upstream(b, a->upstreams[i].name) == NULL)
            sl__diff_end(d, sl__diff_begin(d, "upstream", upstream_name(a, &a->upstreams[i]),
                                           SL_DIFF_REMOVED));
}

void sl__config_diff(struct sl_diff *d, const struct sl_diff_side *old,
                     const struct sl_diff_side *new)
{
    settings(d, old, new);
    listeners(d, old, new);
    upstreams(d, old, new);
    sl__diff_default_plugins(d, old, new);
    sl__diff_routes(d, old, new);
}
