/*
 * sluice - reading configuration, for the core and for plugins.
 *
 * The YAML file is loaded into a tree of struct sl_node, each node knowing
 * its line, column and place in the tree, so that any error can be reported
 * as "FILE:LINE:COL: error: KEY.PATH: message" with the source line and a
 * caret. ${VAR} references in scalars are expanded while the tree is built.
 *
 * The sl_conf_* getters check a key's type and range and report what they
 * expected and what they found. They never stop at the first error: a getter
 * that fails reports, leaves *out untouched and returns -1, and the caller
 * carries on, so one run of "sluice -t" lists every mistake in the file.
 *
 * Everything allocated through a struct sl_conf_ctx lives in the config
 * generation's arena and is freed with the generation.
 */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/arena.h"

enum sl_node_type {
    SL_NODE_NULL,   /* an empty value ("key:" or "~") */
    SL_NODE_SCALAR, /* a string, number or boolean, still as text */
    SL_NODE_MAP,
    SL_NODE_SEQ,
};

struct sl_node {
    enum sl_node_type type;
    int line; /* 1-based position of the node in the file */
    int col;
    const struct sl_node *parent;
    const char *key; /* this node's key in its parent map, or NULL */
    int index;       /* this node's index in its parent sequence, or -1 */
    int key_line;    /* where the key itself is, for "unknown key" errors */
    int key_col;
    bool quoted; /* a scalar written in quotes is always a string */
    /* The loader found this node unusable (an unset ${VAR}, a duplicate key)
     * and reported it: getters fail on it without a second message. */
    bool invalid;
    /* Its text came (in part) from the environment: a ${VAR} was replaced
     * by a variable's value (a default written in the file does not count).
     * Such a value is never shown in a config diff, nor quoted in an
     * error about it. */
    bool from_env;
    bool key_from_env;   /* the same for this node's key */
    const char *problem; /* loader's message, reported once the tree is built */
    bool problem_at_key;
    const char *text; /* SL_NODE_SCALAR: the value, NUL-terminated */
    size_t len;
    struct sl_node **items; /* SL_NODE_MAP (each with key set) or SL_NODE_SEQ */
    size_t n;
};

struct sl_conf_ctx;

/* The child of map under key, or NULL if map is not a map or has no such key. */
const struct sl_node *sl_node_get(const struct sl_node *map, const char *key);

/* A printable name of the node's type for messages: "a map", "a string"... */
const char *sl_node_type_name(const struct sl_node *n);

/*
 * Report an error (or a warning, which does not fail the load) about node.
 * The message is formatted like printf; the file, position, key path, source
 * line and caret are added.
 */
void sl_conf_error(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sl_conf_warn(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Declare that node's line holds a secret (an API key, a password written
 * in the file): messages about anything on that line give its place but
 * never quote it. Call it before reporting.
 */
void sl_conf_secret(struct sl_conf_ctx *ctx, const struct sl_node *node);

/* Errors reported so far through ctx. */
int sl_conf_errors(const struct sl_conf_ctx *ctx);

/* The generation arena: memory that lives exactly as long as the config. */
struct sl_arena *sl_conf_arena(struct sl_conf_ctx *ctx);

/*
 * Check that node is a map whose keys are all in allowed (NULL-terminated);
 * each other key is reported as unknown. Returns 0, or -1 if node is not a map
 * or had an unknown key.
 */
int sl_conf_keys(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *const *allowed);

/*
 * Typed getters for map[key]. When the key is absent they return 1 and leave
 * *out alone (so set the default first), unless required is true, in which
 * case it is an error. They return 0 when *out was set and -1 on error.
 */
int sl_conf_str(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                const char **out, bool required);
int sl_conf_bool(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key, bool *out,
                 bool required);
int sl_conf_uint(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key, uint64_t min,
                 uint64_t max, uint64_t *out, bool required);
/* A duration such as "250ms", "5s", "1m", "2h" or "1d", in milliseconds. */
int sl_conf_duration(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                     uint64_t *out_ms, bool required);
/* A size such as "512", "16k", "10m" or "1g" (binary multiples), in bytes. */
int sl_conf_size(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key, uint64_t *out,
                 bool required);
/* One of names (NULL-terminated); *out is its index. */
int sl_conf_enum(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                 const char *const *names, int *out, bool required);
/* A sequence of strings, NULL-terminated array in the arena; *n its length. */
int sl_conf_strlist(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                    const char ***out, size_t *n, bool required);

/*
 * A rate "N/s", "N/m", "N/h" or "N/d" (also sec, second, min, minute, hour,
 * day; 0 < N <= 1e9): *count events per *period_ms.
 */
int sl_conf_rate(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                 uint64_t *count, uint64_t *period_ms, bool required);

/*
 * Where a per-request key comes from: the client's address, the route, a
 * request header, a cookie or a claim another plugin verified. One grammar
 * for every key in the file (rate_limit's key, an upstream's hash_key...);
 * sl_req_key() (sluice/req.h) gives a request's value.
 */
enum sl_key_source {
    SL_KEY_IP,
    SL_KEY_ROUTE,
    SL_KEY_HEADER,
    SL_KEY_COOKIE,
    SL_KEY_JWT,
    SL_KEY_VAR, /* a request variable: "consumer", "var:NAME" */
};
#define SL_KEYS_ALL                                                                                \
    ((1u << SL_KEY_IP) | (1u << SL_KEY_ROUTE) | (1u << SL_KEY_HEADER) | (1u << SL_KEY_COOKIE) |    \
     (1u << SL_KEY_JWT) | (1u << SL_KEY_VAR))

struct sl_key {
    enum sl_key_source source;
    /* header, cookie, claim or variable ("consumer" for consumer); NULL
     * for ip and route */
    const char *name;
    const char *text; /* as written ("jwt:sub" is also the claim's request variable) */
};

/*
 * A key as written ("ip", "route", "header:NAME", "cookie:NAME",
 * "jwt:CLAIM", "consumer", "var:NAME"), of the sources whose bit
 * (1u << SL_KEY_*) is in allowed; any other is reported with the list of
 * what is allowed.
 */
int sl_conf_key(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                unsigned allowed, struct sl_key *out, bool required);

/* The top-level "redis:" settings (the core reads them). */
struct sl_redis_conf {
    const char *address; /* as written: host:port or unix:/path */
    const char *host;    /* TCP: NUL-terminated host, or NULL */
    uint16_t port;
    const char *unix_path; /* or NULL */
    const char *password;  /* or NULL */
    uint32_t db;
    uint64_t timeout_ms; /* a decision never waits longer (default 50ms) */
};

/* The config's redis settings, or NULL when it has none, whatever the
 * order of the file's sections (the section is read on first demand, once).
 * Valid as long as the generation (like everything from sl_conf_arena()). */
const struct sl_redis_conf *sl_conf_redis(struct sl_conf_ctx *ctx);

/*
 * Declare that the plugin sets or strips the request header name on its way
 * upstream (a forwarded claim, a consumer name, a request id). Call it from
 * conf_parse. Then a client header whose name folds to it ('_' read as '-',
 * any case: X_User_Id for X-User-Id) is removed from every request, whatever
 * headers_with_underscores says, and so is a request trailer of that name:
 * backends that fold '_' and '-' alike would take it for the plugin's. The
 * client's exact copy is left for the plugin to replace or remove.
 */
void sl_conf_header_owned(struct sl_conf_ctx *ctx, const char *name);

/*
 * An upstream named by map[key] (a string naming one of the config's
 * upstreams:): *index is what sl_req_set_upstream() (sluice/req.h) takes.
 * Like the other getters: 1 when absent, 0, or -1 reported.
 */
int sl_conf_upstream(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                     unsigned *index, bool required);

/* The same checks on a node already in hand (a sequence item, say). */
int sl_conf_node_str(struct sl_conf_ctx *ctx, const struct sl_node *n, const char **out);
int sl_conf_node_duration(struct sl_conf_ctx *ctx, const struct sl_node *n, uint64_t *out_ms);

#endif
