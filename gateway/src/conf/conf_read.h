/*
 * The config reading context: which file is being read, where errors go, and
 * the arena the result is built in. Implements the sl_conf_* half of
 * sluice/conf.h.
 */
#ifndef SL_CONF_READ_H
#define SL_CONF_READ_H

#include <stdio.h>

#include "sluice/conf.h"

#include "base/sbuf.h"

struct sl_header_names;

struct sl_conf_ctx {
    const char *file; /* the name errors are reported under */
    const char *text; /* the file's content, for quoting lines */
    size_t len;
    struct sl_arena *arena; /* the generation arena */
    struct sl_sbuf report;  /* every message so far (heap, NUL-terminated; p NULL: none) */
    int errors;
    int warnings;
    const struct sl_node *root;
    struct sl_cleanup *cleanups; /* handed to the generation */
    /* The redis: section: read by read_redis() (installed by the config
     * reader) the first time anyone asks, kept in redis. */
    const struct sl_redis_conf *(*read_redis)(struct sl_conf_ctx *ctx);
    const struct sl_redis_conf *redis;
    bool redis_read;
    struct sl_header_names *owned; /* the config's: names plugins declare they set */
    /* The config reader's: the index of the upstream called name (0), or
     * -1 with *known set to how many upstreams there are. */
    int (*find_upstream)(struct sl_conf_ctx *ctx, const char *name, unsigned *index, size_t *known);
    void *config;                    /* what find_upstream looks in */
    struct sl_secret_line *secrets;  /* lines never quoted (sl_conf_secret()) */
    struct sl_env_value *env_values; /* what ${VAR} brought in: never in a message */
};

struct sl_env_value {
    const char *value; /* a copy, in the arena */
    size_t len;
    struct sl_env_value *next;
};

struct sl_secret_line {
    int line;
    struct sl_secret_line *next;
};

/* Something to release when the generation built by a ctx is freed. */
struct sl_cleanup {
    void (*fn)(void *arg);
    void *arg;
    struct sl_cleanup *next;
};

/* Run fn(arg) when the generation being read is freed (or the load fails). */
void sl__conf_on_free(struct sl_conf_ctx *ctx, void (*fn)(void *), void *arg);

/* Run and forget a cleanup list, newest first. */
void sl__cleanups_run(struct sl_cleanup *c);

/* Start reading text (borrowed for the ctx's lifetime) from file. */
void sl__conf_ctx_init(struct sl_conf_ctx *ctx, const char *file, const char *text, size_t len,
                       struct sl_arena *arena);
void sl__conf_ctx_free(struct sl_conf_ctx *ctx);

/* An error at node, used by the loader before the tree is linked up. */
void sl__conf_error_at(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error about a map entry, pointing at its key rather than its value. */
void sl__conf_error_key(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A YAML syntax error at a position, with libyaml's problem and context. */
void sl__conf_syntax_error(struct sl_conf_ctx *ctx, int line, int col, const char *problem,
                           const char *context);

/* An error about the whole file (cannot read it, say): "FILE: error: msg". */
void sl__conf_file_error(struct sl_conf_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Note that the loader replaced a ${VAR} by value (len bytes, copied): no
 * message reported through ctx from now on quotes it (it
 * reads "(not shown)"), since a dry run answers whoever holds the admin
 * token with the report of a config they sent.
 */
void sl__conf_env_value(struct sl_conf_ctx *ctx, const char *value, size_t len);

/* The dotted path of a node ("routes[0].plugins.jwt"), into buf. */
void sl__conf_path(const struct sl_node *n, char *buf, size_t size);

#endif
