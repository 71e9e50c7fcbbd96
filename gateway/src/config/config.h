/*
 * The gateway's own configuration, read from the YAML tree: listeners,
 * limits, timeouts, logs, upstreams and routes. Plugins read their own keys
 * (see plugins.c); everything here is the core's part of the contract.
 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sluice/conf.h"

#include "base/addr.h"
#include "config/header_policy.h"

struct sl_plugin;
struct sl_tls_server;
struct sl_tls_client;

struct sl_listen_conf {
    const char *address; /* as written */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct sl_tls_server *tls; /* NULL: plain HTTP */
    const struct sl_node *node;
};

struct sl_target_conf {
    const char *address; /* host:port as written (several targets share a name) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char ip[64]; /* numeric "ip:port", for logs and metrics */
    uint32_t weight;
    bool backup;
    bool from_name; /* one of the addresses behind a host name */
};

enum sl_balance {
    SL_BALANCE_ROUND_ROBIN,
    SL_BALANCE_LEAST_CONN,
    SL_BALANCE_HASH,
    SL_BALANCE_P2C,
};

struct sl_health_conf {
    bool enabled;
    const char *path;
    const char *host; /* Host header; NULL = the target's address */
    uint64_t interval_ms, timeout_ms;
    uint32_t healthy, unhealthy;
    uint16_t expect_lo, expect_hi; /* status range counted as healthy */
};

struct sl_upstream_conf {
    const char *name;
    enum sl_balance balance;
    struct sl_key hash_key; /* for balance: hash */
    struct sl_target_conf *targets;
    size_t n_targets;
    uint32_t keepalive; /* idle pooled connections per worker per target */
    uint64_t connect_ms, read_ms, send_ms;
    uint32_t retries;
    struct sl_health_conf health;
    uint32_t passive_failures; /* 0 = passive ejection off */
    uint64_t passive_eject_ms;
    uint64_t resolve_interval_ms;
    struct sl_tls_client *tls; /* NULL: plain HTTP to the targets */
    uint32_t index;            /* position in sl_config.upstreams */
};

/* A plugin enabled on a route, with its parsed config. */
struct sl_plugin_use {
    const struct sl_plugin *plugin;
    void *conf;
};

struct sl_header_match {
    const char *name;
    const char *value;
};

struct sl_route_conf {
    const char *name;
    const char *host;       /* exact host, "*.suffix", or NULL for any */
    const char *path;       /* prefix (segment boundary), or NULL */
    const char *path_exact; /* or NULL */
    const char *path_regex; /* or NULL */
    void *regex;            /* compiled path_regex (pcre2_code) */
    uint64_t methods;       /* bit per llhttp method; 0 = any */
    struct sl_header_match *headers;
    size_t n_headers;
    struct sl_upstream_conf *upstream;
    const char *strip_prefix;      /* or NULL */
    struct sl_plugin_use *plugins; /* in the fixed phase order */
    size_t n_plugins;
    uint32_t access_sample; /* log: {access_sample: N}; 0: log.access_sample's */
    uint32_t index;
    const struct sl_node *node;
};

enum sl_access_log { SL_ACCESS_STDOUT, SL_ACCESS_FILE, SL_ACCESS_OFF };

struct sl_config {
    uint32_t workers; /* resolved: "auto" becomes the CPU count */
    uint64_t shutdown_timeout_ms;
    /* user:, group: whom to run as once the listeners are bound (NULL:
     * stay; a group alone changes only the group). */
    const char *user;
    const char *group;

    struct sl_listen_conf *listen;
    size_t n_listen;

    uint64_t max_header_bytes, max_body_bytes;
    uint32_t max_connections;

    uint64_t client_header_ms, client_body_ms, client_idle_ms, client_send_ms;

    int log_level;
    enum sl_access_log access_log;
    const char *access_log_path;
    const char *error_log_path; /* NULL = stderr */
    bool log_json;              /* log.format: json (the error log) */
    uint32_t access_sample;     /* log 1 in N successful requests (1: all) */
    uint64_t access_buffer;     /* bytes the access log writer may queue */

    struct sl_upstream_conf *upstreams;
    size_t n_upstreams;

    struct sl_route_conf *routes;
    size_t n_routes;

    const char *admin_address; /* NULL: no admin API */
    struct sockaddr_storage admin_addr;
    socklen_t admin_addrlen;
    const char *admin_token; /* NULL or "": no authentication */

    const struct sl_redis_conf *redis; /* NULL when the config has no redis: */
    struct sl_cidr *trusted;           /* trusted_proxies */
    size_t n_trusted;

    /* headers_with_underscores, request_trailers, via, and the names the
     * plugins declared owned (sl_conf_header_owned()). */
    struct sl_header_policy headers;

    /* Plugin configs from the top-level "plugins:" defaults. */
    struct sl_plugin_use *default_plugins;
    size_t n_default_plugins;
};

/*
 * Build the config from root, reporting every error through ctx. Returns the
 * config (in the ctx's arena) even when errors were reported, so that all of
 * them are found in one run; the caller checks sl_conf_errors().
 */
struct sl_config *sl__config_parse(struct sl_conf_ctx *ctx, const struct sl_node *root);

/* The sections read in their own files, called by sl__config_parse(). */
void sl__config_read_upstreams(struct sl_conf_ctx *ctx, const struct sl_node *root,
                               struct sl_config *c);
void sl__config_read_routes(struct sl_conf_ctx *ctx, const struct sl_node *root,
                            struct sl_config *c);
/* A route's own log: section ({access_sample: N}), into r. */
void sl__config_read_route_log(struct sl_conf_ctx *ctx, const struct sl_node *n,
                               struct sl_route_conf *r);

#endif
