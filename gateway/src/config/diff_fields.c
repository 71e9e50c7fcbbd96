/*
 * Field and subtree comparisons for the config diff, and how their values
 * are written in a detail: one line, the config's own units, flow-style
 * YAML for lists and maps, and never a secret.
 */
#include "config/diff_fields.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/sbuf.h"

/* Longest value written in a detail; longer ones end in "...". */
#define MAX_VALUE 160

static const char *unset(const char *s)
{
    return s ? s : "(unset)";
}

static void add(struct sl_diff *d, struct sl_diff_change *c, const char *what, const char *a,
                const char *b)
{
    sl__diff_detail(d, c, "%s%s%s -> %s", what, what[0] ? " " : "", a, b);
}

void sl__diff_str(struct sl_diff *d, struct sl_diff_change *c, const char *what, const char *a,
                  const char *b)
{
    if (a == b || (a != NULL && b != NULL && strcmp(a, b) == 0))
        return;
    add(d, c, what, unset(a), unset(b));
}

void sl__diff_uint(struct sl_diff *d, struct sl_diff_change *c, const char *what, uint64_t a,
                   uint64_t b)
{
    char x[24], y[24];

    if (a == b)
        return;
    snprintf(x, sizeof(x), "%" PRIu64, a);
    snprintf(y, sizeof(y), "%" PRIu64, b);
    add(d, c, what, x, y);
}

const char *sl__diff_fmt_ms(char *buf, uint64_t ms)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};

    if (ms == 0) {
        snprintf(buf, 32, "0");
        return buf;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, 32, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
            return buf;
        }
    }
    snprintf(buf, 32, "%" PRIu64 "ms", ms);
    return buf;
}

void sl__diff_ms(struct sl_diff *d, struct sl_diff_change *c, const char *what, uint64_t a,
                 uint64_t b)
{
    char x[32], y[32];

    if (a != b)
        add(d, c, what, sl__diff_fmt_ms(x, a), sl__diff_fmt_ms(y, b));
}

static const char *fmt_size(char *buf, uint64_t n)
{
    static const char units[] = {'g', 'm', 'k'};

    for (int i = 0; i < 3; i++) {
        uint64_t m = 1ull << (10 * (3 - i));

        if (n != 0 && n % m == 0) {
            snprintf(buf, 32, "%" PRIu64 "%c", n / m, units[i]);
            return buf;
        }
    }
    snprintf(buf, 32, "%" PRIu64, n);
    return buf;
}

void sl__diff_size(struct sl_diff *d, struct sl_diff_change *c, const char *what, uint64_t a,
                   uint64_t b)
{
    char x[32], y[32];

    if (a != b)
        add(d, c, what, fmt_size(x, a), fmt_size(y, b));
}

void sl__diff_bool(struct sl_diff *d, struct sl_diff_change *c, const char *what, bool a, bool b)
{
    if (a != b)
        add(d, c, what, a ? "true" : "false", b ? "true" : "false");
}

void sl__diff_secret(struct sl_diff *d, struct sl_diff_change *c, const char *what, const char *a,
                     const char *b)
{
    bool has_a = a != NULL && a[0], has_b = b != NULL && b[0];

    if (!has_a && !has_b)
        return;
    if (has_a != has_b)
        add(d, c, what, has_a ? "(set)" : "(unset)", has_b ? "(set)" : "(unset)");
    else if (strcmp(a, b) != 0)
        sl__diff_detail(d, c, "%s changed (not shown)", what);
}

/* The root of the YAML tree a config was read from: the tree lives in the
 * generation's arena, and every checked config has a listener whose node
 * leads up to it. */
const struct sl_node *sl__diff_root(const struct sl_config *c)
{
    const struct sl_node *n = c->n_listen   ? c->listen[0].node
                              : c->n_routes ? c->routes[0].node
                                            : NULL;

    while (n != NULL && n->parent != NULL)
        n = n->parent;
    return n;
}

/* -- YAML subtrees ------------------------------------------------------------ */

static bool empty(const struct sl_node *n)
{
    return n == NULL || n->type == SL_NODE_NULL || (n->type == SL_NODE_MAP && n->n == 0);
}

bool sl__diff_nodes_equal(const struct sl_node *a, const struct sl_node *b)
{
    if (empty(a) || empty(b))
        return empty(a) && empty(b);
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case SL_NODE_SCALAR:
        return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
    case SL_NODE_SEQ:
        if (a->n != b->n)
            return false;
        for (size_t i = 0; i < a->n; i++)
            if (!sl__diff_nodes_equal(a->items[i], b->items[i]))
                return false;
        return true;
    case SL_NODE_MAP:
        if (a->n != b->n)
            return false;
        for (size_t i = 0; i < a->n; i++)
            if (!sl__diff_nodes_equal(a->items[i], sl_node_get(b, a->items[i]->key)))
                return false;
        return true;
    default:
        return true;
    }
}

/* Does a key path name something secret? Case-insensitive substrings:
 * over-hiding a harmless value costs less than showing a secret. */
static bool secret_path(const char *path)
{
    static const char *const words[] = {"secret", "password", "passwd", "token",   "authorization",
                                        "cookie", "private",  "apikey", "api-key", "keys"};
    char low[256];
    size_t n = 0;

    for (; path[n] && n < sizeof(low) - 1; n++)
        low[n] = (char)tolower((unsigned char)path[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(low, words[i]) != NULL)
            return true;
    return false;
}

/* Was a scalar of n written with ${VAR}? Its source, from its position to
 * the end of that line, is looked at: a false alarm hides a value, which
 * is the safe way to be wrong. */
static bool from_env(const struct sl_node *n, const struct sl_diff_side *s)
{
    const char *p, *end;
    int line = 1;

    if (n == NULL || s == NULL || s->text == NULL)
        return false;
    if (n->type == SL_NODE_MAP || n->type == SL_NODE_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            if (from_env(n->items[i], s))
                return true;
        return false;
    }
    if (n->type != SL_NODE_SCALAR)
        return false;
    p = s->text;
    end = s->text + s->len;
    while (p < end && line < n->line) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));

        if (nl == NULL)
            return false;
        p = nl + 1;
        line++;
    }
    if (n->col > 1)
        p += n->col - 1 < end - p ? n->col - 1 : end - p;
    for (; p + 1 < end && *p != '\n'; p++)
        if (p[0] == '$' && p[1] == '{')
            return true;
    return false;
}

static bool plain(const struct sl_node *n)
{
    if (n->len == 0 || n->quoted || isspace((unsigned char)n->text[0]) ||
        isspace((unsigned char)n->text[n->len - 1]))
        return false;
    for (size_t i = 0; i < n->len; i++)
        if (strchr(",[]{}:#\"'", n->text[i]) != NULL || (unsigned char)n->text[i] < 0x20)
            return false;
    return true;
}

/* A value as flow-style YAML on one line (control characters escaped). */
static void render(struct sl_sbuf *b, const struct sl_node *n)
{
    if (n == NULL) {
        sl__sbuf_lit(b, "(unset)");
    } else if (n->type == SL_NODE_NULL) {
        sl__sbuf_lit(b, "~");
    } else if (n->type == SL_NODE_SCALAR && plain(n)) {
        sl__sbuf_add(b, n->text, n->len);
    } else if (n->type == SL_NODE_SCALAR) {
        sl__sbuf_json(b, (struct sl_str){n->text, n->len});
    } else {
        bool map = n->type == SL_NODE_MAP;

        sl__sbuf_lit(b, map ? "{" : "[");
        for (size_t i = 0; i < n->n && b->len < 4 * MAX_VALUE; i++) {
            if (i)
                sl__sbuf_lit(b, ", ");
            if (map)
                sl__sbuf_printf(b, "%s: ", n->items[i]->key);
            render(b, n->items[i]);
        }
        sl__sbuf_lit(b, map ? "}" : "]");
    }
}

static const char *value(struct sl_diff *d, const struct sl_node *n)
{
    struct sl_sbuf b = {0};
    const char *out;

    render(&b, n);
    if (b.len > MAX_VALUE)
        out = sl_arena_printf(d->arena, "%.*s...", MAX_VALUE, b.p);
    else
        out = sl_arena_strndup(d->arena, b.p, b.len);
    sl__sbuf_free(&b);
    return out;
}

/* One detail about the subtree at path, which differs. */
static void differ(struct sl_diff *d, struct sl_diff_change *c, const char *path,
                   const struct sl_node *a, const struct sl_diff_side *sa, const struct sl_node *b,
                   const struct sl_diff_side *sb)
{
    if (secret_path(path) || from_env(a, sa) || from_env(b, sb)) {
        if (empty(a) != empty(b))
            add(d, c, path, empty(a) ? "(unset)" : "(set)", empty(b) ? "(unset)" : "(set)");
        else
            sl__diff_detail(d, c, "%s changed (not shown)", path);
        return;
    }
    add(d, c, path, value(d, a), value(d, b));
}

static const char *child_path(struct sl_diff *d, const char *what, const char *key)
{
    return what[0] ? sl_arena_printf(d->arena, "%s.%s", what, key) : key;
}

void sl__diff_nodes(struct sl_diff *d, struct sl_diff_change *c, const char *what,
                    const struct sl_node *a, const struct sl_diff_side *sa, const struct sl_node *b,
                    const struct sl_diff_side *sb)
{
    if (sl__diff_nodes_equal(a, b))
        return;
    if (a == NULL || b == NULL || a->type != SL_NODE_MAP || b->type != SL_NODE_MAP) {
        differ(d, c, what, a, sa, b, sb);
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        sl__diff_nodes(d, c, child_path(d, what, b->items[i]->key),
                       sl_node_get(a, b->items[i]->key), sa, b->items[i], sb);
    for (size_t i = 0; i < a->n; i++)
        if (sl_node_get(b, a->items[i]->key) == NULL)
            differ(d, c, child_path(d, what, a->items[i]->key), a->items[i], sa, NULL, sb);
}
