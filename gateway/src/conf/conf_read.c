/*
 * Config errors and typed getters. An error names the file, line and column
 * (1-based), the key path, what was expected and what was found, then quotes
 * the source line with a caret under the column:
 *
 *   sluice.yaml:12:16: error: routes[0].upstream: unknown upstream "userz"
 *      12 |     upstream: userz
 *         |               ^
 */
#include "conf/conf_read.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/header_names.h"
#include "base/sbuf.h"
#include "base/units.h"
#include "base/util.h"
#include "conf/key_trace.h"

void sl__conf_ctx_init(struct sl_conf_ctx *ctx, const char *file, const char *text, size_t len,
                       struct sl_arena *arena)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->file = file;
    ctx->text = text;
    ctx->len = len;
    ctx->arena = arena;
}

void sl__conf_ctx_free(struct sl_conf_ctx *ctx)
{
    sl__sbuf_free(&ctx->report);
}

void sl__conf_on_free(struct sl_conf_ctx *ctx, void (*fn)(void *), void *arg)
{
    struct sl_cleanup *c = sl_arena_alloc(ctx->arena, sizeof(*c));

    c->fn = fn;
    c->arg = arg;
    c->next = ctx->cleanups;
    ctx->cleanups = c;
}

void sl__cleanups_run(struct sl_cleanup *c)
{
    for (; c != NULL; c = c->next)
        c->fn(c->arg);
}

const struct sl_redis_conf *sl_conf_redis(struct sl_conf_ctx *ctx)
{
    if (!ctx->redis_read && ctx->read_redis != NULL) {
        ctx->redis_read = true;
        ctx->redis = ctx->read_redis(ctx);
    }
    return ctx->redis;
}

void sl_conf_header_owned(struct sl_conf_ctx *ctx, const char *name)
{
    if (ctx->owned != NULL)
        sl__header_names_add(ctx->owned, ctx->arena, name);
}

struct sl_arena *sl_conf_arena(struct sl_conf_ctx *ctx)
{
    return ctx->arena;
}

int sl_conf_errors(const struct sl_conf_ctx *ctx)
{
    return ctx->errors;
}

static void append(struct sl_conf_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void append(struct sl_conf_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sl__sbuf_vprintf(&ctx->report, fmt, ap);
    va_end(ap);
}

void sl__conf_env_value(struct sl_conf_ctx *ctx, const char *value, size_t len)
{
    struct sl_env_value *v;

    if (len == 0)
        return;
    for (v = ctx->env_values; v != NULL; v = v->next)
        if (v->len == len && memcmp(v->value, value, len) == 0)
            return;
    v = sl_arena_alloc(ctx->arena, sizeof(*v));
    v->value = sl_arena_strndup(ctx->arena, value, len);
    v->len = len;
    v->next = ctx->env_values;
    ctx->env_values = v;
}

/* Does v's value start at p, in a message that starts at start? A short
 * value ("1", "on") counts only as a whole word, lest it eat other text. */
static bool env_at(const char *start, const char *p, const struct sl_env_value *v)
{
    if (strncmp(p, v->value, v->len) != 0)
        return false;
    if (v->len >= 4)
        return true;
    return (p == start || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[v->len]);
}

/* Replace in s (a message, or a key path: keys are expanded too) every
 * value ${VAR} brought in by "(not shown)". */
static void hide_env(const struct sl_conf_ctx *ctx, char *s, size_t size)
{
    char out[1024];
    size_t o = 0;
    const char *p = s;

    if (ctx->env_values == NULL)
        return;
    while (*p && o + 1 < sizeof(out)) {
        const struct sl_env_value *v = ctx->env_values;

        while (v != NULL && !env_at(s, p, v))
            v = v->next;
        if (v == NULL) {
            out[o++] = *p++;
            continue;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "(not shown)");
        if (o >= sizeof(out))
            o = sizeof(out) - 1;
        p += v->len;
    }
    if (o >= size)
        o = size - 1;
    memcpy(s, out, o);
    s[o] = '\0';
}

void sl__conf_path(const struct sl_node *n, char *buf, size_t size)
{
    const struct sl_node *chain[64];
    size_t depth = 0, len = 0;

    buf[0] = '\0';
    for (; n != NULL && n->parent != NULL && depth < SL_ARRAY_LEN(chain); n = n->parent)
        chain[depth++] = n;
    while (depth-- > 0 && len < size) {
        const struct sl_node *c = chain[depth];
        int r;

        if (c->key != NULL)
            r = snprintf(buf + len, size - len, "%s%s", len ? "." : "", c->key);
        else
            r = snprintf(buf + len, size - len, "[%d]", c->index);
        if (r < 0)
            break;
        len += (size_t)r;
    }
}

void sl_conf_secret(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    struct sl_secret_line *s;

    if (node == NULL || (s = sl_arena_alloc(ctx->arena, sizeof(*s))) == NULL)
        return;
    s->line = node->line;
    s->next = ctx->secrets;
    ctx->secrets = s;
}

/* Quote source line `line` and put a caret under column `col`; a line
 * holding a secret is named, not shown. */
static void quote_line(struct sl_conf_ctx *ctx, int line, int col)
{
    const char *p = ctx->text, *end = ctx->text + ctx->len, *eol;
    int l = 1;

    if (p == NULL || line < 1)
        return;
    for (const struct sl_secret_line *s = ctx->secrets; s != NULL; s = s->next) {
        if (s->line == line) {
            append(ctx, "%5d | (not shown: the line holds a secret)\n", line);
            return;
        }
    }
    while (l < line && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));

        if (nl == NULL)
            return;
        p = nl + 1;
        l++;
    }
    if (p >= end && line > 1)
        return;
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
        eol = end;
    if (eol > p && eol[-1] == '\r')
        eol--;
    append(ctx, "%5d | %.*s\n      | ", line, (int)(eol - p), p);
    /* Copy tabs so the caret lines up under a line indented with tabs. */
    for (int c = 1; c < col && p + c - 1 < eol; c++)
        append(ctx, "%c", p[c - 1] == '\t' ? '\t' : ' ');
    append(ctx, "^\n");
}

static void report(struct sl_conf_ctx *ctx, bool warning, int line, int col, const char *path,
                   const char *fmt, va_list ap)
{
    char msg[1024], where[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    hide_env(ctx, msg, sizeof(msg));
    if (warning)
        ctx->warnings++;
    else
        ctx->errors++;
    snprintf(where, sizeof(where), "%s", path && path[0] ? path : "");
    hide_env(ctx, where, sizeof(where));
    append(ctx, "%s:%d:%d: %s: %s%s%s\n", ctx->file, line, col, warning ? "warning" : "error",
           where, where[0] ? ": " : "", msg);
    quote_line(ctx, line, col);
}

static void node_report(struct sl_conf_ctx *ctx, bool warning, const struct sl_node *node,
                        const char *fmt, va_list ap)
{
    char path[512];
    int line = node ? node->line : 1, col = node ? node->col : 1;

    sl__conf_path(node, path, sizeof(path));
    report(ctx, warning, line, col, path, fmt, ap);
}

void sl_conf_error(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    node_report(ctx, false, node, fmt, ap);
    va_end(ap);
}

void sl_conf_warn(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    node_report(ctx, true, node, fmt, ap);
    va_end(ap);
}

void sl__conf_error_at(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    node_report(ctx, false, node, fmt, ap);
    va_end(ap);
}

void sl__conf_error_key(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *fmt, ...)
{
    char path[512];
    va_list ap;

    sl__conf_path(node, path, sizeof(path));
    va_start(ap, fmt);
    report(ctx, false, node->key_line, node->key_col, path, fmt, ap);
    va_end(ap);
}

void sl__conf_syntax_error(struct sl_conf_ctx *ctx, int line, int col, const char *problem,
                           const char *context)
{
    ctx->errors++;
    append(ctx, "%s:%d:%d: error: YAML syntax: %s%s%s\n", ctx->file, line, col,
           problem ? problem : "invalid document", context ? " " : "", context ? context : "");
    quote_line(ctx, line, col);
}

void sl__conf_file_error(struct sl_conf_ctx *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hide_env(ctx, msg, sizeof(msg));
    ctx->errors++;
    append(ctx, "%s: error: %s\n", ctx->file, msg);
}

const struct sl_node *sl_node_get(const struct sl_node *map, const char *key)
{
    if (map == NULL || map->type != SL_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[i]->key, key) == 0)
            return map->items[i];
    return NULL;
}

const char *sl_node_type_name(const struct sl_node *n)
{
    switch (n->type) {
    case SL_NODE_NULL:
        return "nothing";
    case SL_NODE_MAP:
        return "a map";
    case SL_NODE_SEQ:
        return "a list";
    default:
        return "a value";
    }
}

/* "a map", "a list" or the scalar quoted, to say what was found (not a
 * value from ${VAR}: cut to 60 characters, it could escape hide_env()). */
static const char *found(const struct sl_node *n, char *buf, size_t size)
{
    if (n->type != SL_NODE_SCALAR)
        return sl_node_type_name(n);
    if (n->from_env)
        return "a value from the environment (not shown)";
    snprintf(buf, size, "\"%.60s%s\"", n->text, n->len > 60 ? "..." : "");
    return buf;
}

int sl_conf_keys(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *const *allowed)
{
    int rc = 0;

    if (sl__key_trace_on)
        sl__key_trace_map(node, node == ctx->root, allowed);
    if (node->type != SL_NODE_MAP) {
        char buf[80];

        sl_conf_error(ctx, node, "expected a map, found %s", found(node, buf, sizeof(buf)));
        return -1;
    }
    for (size_t i = 0; i < node->n; i++) {
        const struct sl_node *c = node->items[i];
        const char *const *a;

        for (a = allowed; *a != NULL; a++)
            if (strcmp(*a, c->key) == 0)
                break;
        if (*a == NULL) {
            char path[512], known[512];
            size_t len = 0;

            known[0] = '\0';
            for (a = allowed; *a != NULL && len < sizeof(known); a++) {
                int r = snprintf(known + len, sizeof(known) - len, "%s%s", len ? ", " : "", *a);

                if (r > 0)
                    len += (size_t)r;
            }
            sl__conf_path(c, path, sizeof(path));
            hide_env(ctx, path, sizeof(path));
            ctx->errors++;
            append(ctx, "%s:%d:%d: error: %s: unknown key (expected one of: %s)\n", ctx->file,
                   c->key_line, c->key_col, path, known);
            quote_line(ctx, c->key_line, c->key_col);
            rc = -1;
        }
    }
    return rc;
}

/* Look up map[key]: 1 if absent (error if required), 0 if present. */
static int lookup(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                  bool required, const struct sl_node **out)
{
    *out = sl_node_get(map, key);
    if (*out != NULL)
        return (*out)->invalid ? -1 : 0;
    if (required) {
        char path[512];

        sl__conf_path(map, path, sizeof(path));
        hide_env(ctx, path, sizeof(path));
        ctx->errors++;
        append(ctx, "%s:%d:%d: error: %s%s%s: required key is missing\n", ctx->file, map->line,
               map->col, path, path[0] ? "." : "", key);
        quote_line(ctx, map->line, map->col);
        return -1;
    }
    return 1;
}

static int want_scalar(struct sl_conf_ctx *ctx, const struct sl_node *n, const char *what)
{
    char buf[80];

    if (n->invalid)
        return -1; /* already reported */
    if (n->type == SL_NODE_SCALAR)
        return 0;
    sl_conf_error(ctx, n, "expected %s, found %s", what, found(n, buf, sizeof(buf)));
    return -1;
}

int sl_conf_node_str(struct sl_conf_ctx *ctx, const struct sl_node *n, const char **out)
{
    if (want_scalar(ctx, n, "a string") != 0)
        return -1;
    *out = n->text;
    return 0;
}

int sl_conf_str(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                const char **out, bool required)
{
    const struct sl_node *n;
    int r = lookup(ctx, map, key, required, &n);

    return r != 0 ? r : sl_conf_node_str(ctx, n, out);
}

int sl_conf_bool(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key, bool *out,
                 bool required)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    const struct sl_node *n;
    char buf[80];
    int r = lookup(ctx, map, key, required, &n);

    if (r != 0)
        return r;
    if (n->type == SL_NODE_SCALAR && !n->quoted) {
        for (int i = 0; yes[i]; i++)
            if (strcasecmp(n->text, yes[i]) == 0)
                return *out = true, 0;
        for (int i = 0; no[i]; i++)
            if (strcasecmp(n->text, no[i]) == 0)
                return *out = false, 0;
    }
    sl_conf_error(ctx, n, "expected true or false, found %s", found(n, buf, sizeof(buf)));
    return -1;
}

int sl_conf_uint(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key, uint64_t min,
                 uint64_t max, uint64_t *out, bool required)
{
    const struct sl_node *n;
    char buf[80], *end;
    unsigned long long v;
    int r = lookup(ctx, map, key, required, &n);

    if (r != 0)
        return r;
    if (want_scalar(ctx, n, "a number") != 0)
        return -1;
    errno = 0;
    v = strtoull(n->text, &end, 10);
    if (n->len == 0 || *end != '\0' || errno != 0 || n->text[0] == '-' || n->text[0] == '+' ||
        n->text[0] == ' ') {
        sl_conf_error(ctx, n, "expected a whole number, found %s", found(n, buf, sizeof(buf)));
        return -1;
    }
    if (v < min || v > max) {
        sl_conf_error(ctx, n, "must be between %" PRIu64 " and %" PRIu64 ", found %llu", min, max,
                      v);
        return -1;
    }
    *out = v;
    return 0;
}

int sl_conf_node_duration(struct sl_conf_ctx *ctx, const struct sl_node *n, uint64_t *out_ms)
{
    char buf[80];

    if (want_scalar(ctx, n, "a duration such as 250ms, 5s or 1m") != 0)
        return -1;
    if (sl__parse_duration(n->text, n->len, out_ms) != 0) {
        sl_conf_error(ctx, n, "expected a duration such as 250ms, 5s or 1m, found %s",
                      found(n, buf, sizeof(buf)));
        return -1;
    }
    return 0;
}

int sl_conf_duration(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                     uint64_t *out_ms, bool required)
{
    const struct sl_node *n;
    int r = lookup(ctx, map, key, required, &n);

    return r != 0 ? r : sl_conf_node_duration(ctx, n, out_ms);
}

int sl_conf_size(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key, uint64_t *out,
                 bool required)
{
    const struct sl_node *n;
    char buf[80];
    int r = lookup(ctx, map, key, required, &n);

    if (r != 0)
        return r;
    if (want_scalar(ctx, n, "a size such as 16k or 10m") != 0)
        return -1;
    if (sl__parse_size(n->text, n->len, out) != 0) {
        sl_conf_error(ctx, n, "expected a size such as 512, 16k or 10m, found %s",
                      found(n, buf, sizeof(buf)));
        return -1;
    }
    return 0;
}

int sl_conf_enum(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                 const char *const *names, int *out, bool required)
{
    const struct sl_node *n;
    char buf[80], list[256];
    size_t len = 0;
    int r = lookup(ctx, map, key, required, &n);

    if (r != 0)
        return r;
    if (n->type == SL_NODE_SCALAR) {
        for (int i = 0; names[i]; i++)
            if (strcmp(n->text, names[i]) == 0)
                return *out = i, 0;
    }
    list[0] = '\0';
    for (int i = 0; names[i] && len < sizeof(list); i++) {
        int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? " | " : "", names[i]);

        if (w > 0)
            len += (size_t)w;
    }
    sl_conf_error(ctx, n, "expected %s, found %s", list, found(n, buf, sizeof(buf)));
    return -1;
}

int sl_conf_strlist(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                    const char ***out, size_t *count, bool required)
{
    const struct sl_node *n;
    const char **v;
    char buf[80];
    int r = lookup(ctx, map, key, required, &n), rc = 0;

    if (r != 0)
        return r;
    if (n->type == SL_NODE_SCALAR) {
        /* A single string stands for a list of one. */
        v = sl_arena_alloc(ctx->arena, 2 * sizeof(*v));
        v[0] = n->text;
        v[1] = NULL;
        *out = v;
        *count = 1;
        return 0;
    }
    if (n->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, n, "expected a list of strings, found %s", found(n, buf, sizeof(buf)));
        return -1;
    }
    v = sl_arena_alloc(ctx->arena, (n->n + 1) * sizeof(*v));
    for (size_t i = 0; i < n->n; i++)
        if (sl_conf_node_str(ctx, n->items[i], &v[i]) != 0)
            rc = -1;
    v[n->n] = NULL;
    if (rc != 0)
        return -1;
    *out = v;
    *count = n->n;
    return 0;
}

int sl_conf_rate(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                 uint64_t *count, uint64_t *period_ms, bool required)
{
    const char *text;
    int r = sl_conf_str(ctx, map, key, &text, required);

    if (r != 0)
        return r;
    if (sl__parse_rate(text, strlen(text), count, period_ms) != 0) {
        sl_conf_error(ctx, sl_node_get(map, key),
                      "expected a rate such as 100/s, 10/m or 1000/h, found \"%s\"", text);
        return -1;
    }
    return 0;
}

int sl_conf_upstream(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                     unsigned *index, bool required)
{
    const char *name;
    size_t known = 0;
    int r = sl_conf_str(ctx, map, key, &name, required);

    if (r != 0)
        return r;
    if (ctx->find_upstream != NULL && ctx->find_upstream(ctx, name, index, &known) == 0)
        return 0;
    sl_conf_error(ctx, sl_node_get(map, key), "unknown upstream \"%s\"%s", name,
                  known ? "" : " (no upstreams are defined)");
    return -1;
}

int sl_conf_key(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                unsigned allowed, struct sl_key *out, bool required)
{
    /* What each source (bit) is written as. */
    static const char *const names[][2] = {{"ip"},          {"route"},
                                           {"header:NAME"}, {"cookie:NAME"},
                                           {"jwt:CLAIM"},   {"consumer", "var:NAME"}};
    const char *forms[2 * SL_ARRAY_LEN(names)];
    char list[160];
    size_t len = 0, n = 0;
    const char *text;
    int r = sl_conf_str(ctx, map, key, &text, required);

    if (r != 0)
        return r;
    if (sl__parse_key(text, allowed, out) == 0)
        return 0;
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++)
        for (size_t j = 0; j < 2 && ((allowed >> i) & 1) && names[i][j] != NULL; j++)
            forms[n++] = names[i][j];
    list[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                i == 0       ? ""
                                : i == n - 1 ? " or "
                                             : ", ",
                                forms[i]);
    sl_conf_error(ctx, sl_node_get(map, key), "expected %s, found \"%s\"", list, text);
    return -1;
}
