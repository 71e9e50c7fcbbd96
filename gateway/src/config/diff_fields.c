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

/* -- values from the environment ---------------------------------------------- */

bool sl__diff_env(const struct sl_node *n)
{
    if (n == NULL)
        return false;
    if (n->from_env)
        return true;
    if (n->type == SL_NODE_MAP || n->type == SL_NODE_SEQ)
        for (size_t i = 0; i < n->n; i++)
            if (n->items[i]->key_from_env || sl__diff_env(n->items[i]))
                return true;
    return false;
}

void sl__diff_from(struct sl_diff *d, const struct sl_node *a, const struct sl_node *b)
{
    d->from_a = a;
    d->from_b = b;
}

/* The node at the dotted key path what under n ("" is n itself), or NULL. */
static const struct sl_node *at(const struct sl_node *n, const char *what)
{
    char key[128];

    while (n != NULL && what[0]) {
        const char *dot = strchr(what, '.');
        size_t len = dot ? (size_t)(dot - what) : strlen(what);

        if (len >= sizeof(key))
            return NULL;
        memcpy(key, what, len);
        key[len] = '\0';
        n = sl_node_get(n, key);
        what += len + (dot != NULL);
    }
    return n;
}

bool sl__diff_hidden(const struct sl_diff *d, const char *what)
{
    return sl__diff_env(at(d->from_a, what)) || sl__diff_env(at(d->from_b, what));
}

bool sl__diff_hidden_scalar(const struct sl_diff *d, const char *what)
{
    const struct sl_node *a = at(d->from_a, what), *b = at(d->from_b, what);

    return (a != NULL && a->from_env) || (b != NULL && b->from_env);
}

const char *sl__diff_name(const char *name, bool env)
{
    return env ? "(not shown)" : name;
}

/* The detail for two values of which one came from the environment. */
static void not_shown(struct sl_diff *d, struct sl_diff_change *c, const char *what, bool has_a,
                      bool has_b)
{
    if (has_a != has_b)
        add(d, c, what, has_a ? "(set)" : "(unset)", has_b ? "(set)" : "(unset)");
    else
        sl__diff_detail(d, c, "%s%schanged (not shown)", what, what[0] ? " " : "");
}

void sl__diff_str(struct sl_diff *d, struct sl_diff_change *c, const char *what, const char *a,
                  const char *b)
{
    if (a == b || (a != NULL && b != NULL && strcmp(a, b) == 0))
        return;
    if (sl__diff_hidden(d, what))
        not_shown(d, c, what, a != NULL, b != NULL);
    else
        add(d, c, what, unset(a), unset(b));
}

void sl__diff_uint(struct sl_diff *d, struct sl_diff_change *c, const char *what, uint64_t a,
                   uint64_t b)
{
    char x[24], y[24];

    if (a == b)
        return;
    if (sl__diff_hidden(d, what)) {
        not_shown(d, c, what, true, true);
        return;
    }
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

    if (a != b && sl__diff_hidden(d, what))
        not_shown(d, c, what, true, true);
    else if (a != b)
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

    if (a != b && sl__diff_hidden(d, what))
        not_shown(d, c, what, true, true);
    else if (a != b)
        add(d, c, what, fmt_size(x, a), fmt_size(y, b));
}

void sl__diff_bool(struct sl_diff *d, struct sl_diff_change *c, const char *what, bool a, bool b)
{
    if (a != b && sl__diff_hidden(d, what))
        not_shown(d, c, what, true, true);
    else if (a != b)
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

/* Does a key name something secret? Case-insensitive substrings:
 * over-hiding a harmless value costs less than showing a secret. */
static bool has_word(const char *name, const char *const *words, size_t n_words)
{
    char low[256];
    size_t n = 0;

    for (; name[n] && n < sizeof(low) - 1; n++)
        low[n] = (char)tolower((unsigned char)name[n]);
    low[n] = '\0';
    for (size_t i = 0; i < n_words; i++)
        if (strstr(low, words[i]) != NULL)
            return true;
    return false;
}

static bool secret_name(const char *name)
{
    static const char *const words[] = {"secret", "password", "passwd", "token",   "authorization",
                                        "cookie", "private",  "apikey", "api-key", "keys"};

    return has_word(name, words, sizeof(words) / sizeof(words[0]));
}

bool sl__diff_secret_header(const char *name)
{
    static const char *const words[] = {"key", "auth", "session", "credential", "signature"};

    return secret_name(name) || has_word(name, words, sizeof(words) / sizeof(words[0]));
}

/* A key under which header names map to values ("headers", "set", "add"
 * under headers:...): its keys are read as header names. */
static bool header_word(const char *key)
{
    static const char *const words[] = {"header"};

    return has_word(key, words, 1);
}

/* Is the value of entry e, in map m, not to be shown? Its key names a
 * secret; in a map of headers, the header looks secret; or e is the
 * "value" beside a "header:" or "cookie:" that does ({header:
 * Authorization, value: ...}, as split's rules are written). */
static bool secret_entry(const struct sl_node *m, const struct sl_node *e, bool headers)
{
    static const char *const names[] = {"header", "cookie"};

    if (secret_name(e->key) || (headers && sl__diff_secret_header(e->key)))
        return true;
    if (strcmp(e->key, "value") != 0)
        return false;
    for (size_t i = 0; i < 2; i++) {
        const struct sl_node *h = sl_node_get(m, names[i]);

        if (h != NULL && h->type == SL_NODE_SCALAR && sl__diff_secret_header(h->text))
            return true;
    }
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

/* A value as flow-style YAML on one line (control characters escaped),
 * each map entry that secret_entry() picks reading "(not shown)". */
static void render(struct sl_sbuf *b, const struct sl_node *n, bool headers)
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
            const struct sl_node *e = n->items[i];

            if (i)
                sl__sbuf_lit(b, ", ");
            if (map)
                sl__sbuf_printf(b, "%s: ", e->key);
            if (map && secret_entry(n, e, headers))
                sl__sbuf_lit(b, "(not shown)");
            else
                render(b, e, headers || (map && header_word(e->key)));
        }
        sl__sbuf_lit(b, map ? "}" : "]");
    }
}

static const char *value(struct sl_diff *d, const struct sl_node *n, bool headers)
{
    struct sl_sbuf b = {0};
    const char *out;

    render(&b, n, headers);
    if (b.len > MAX_VALUE)
        out = sl_arena_printf(d->arena, "%.*s...", MAX_VALUE, b.p);
    else
        out = sl_arena_strndup(d->arena, b.p, b.len);
    sl__sbuf_free(&b);
    return out;
}

/* One detail about the subtree at path, which differs (secret: a key on
 * the way to it names a secret). */
static void differ(struct sl_diff *d, struct sl_diff_change *c, const char *path,
                   const struct sl_node *a, const struct sl_node *b, bool secret, bool headers)
{
    if (secret || sl__diff_env(a) || sl__diff_env(b))
        not_shown(d, c, path, !empty(a), !empty(b));
    else
        add(d, c, path, value(d, a, headers), value(d, b, headers));
}

static const char *child_path(struct sl_diff *d, const char *what, const struct sl_node *e)
{
    /* A key written with ${VAR} is not named either. */
    const char *key = e->key_from_env ? "(not shown)" : e->key;

    return what[0] ? sl_arena_printf(d->arena, "%s.%s", what, key) : key;
}

static bool map_or_empty(const struct sl_node *n)
{
    return empty(n) || n->type == SL_NODE_MAP;
}

/* Maps, or a map and nothing, are compared key by key, so that every
 * value (the ones a side adds or drops whole included) passes the
 * secret-name test under its own key; anything else is compared whole. */
static void nodes(struct sl_diff *d, struct sl_diff_change *c, const char *what,
                  const struct sl_node *a, const struct sl_node *b, bool secret, bool headers)
{
    if (sl__diff_nodes_equal(a, b))
        return;
    if (!map_or_empty(a) || !map_or_empty(b)) {
        differ(d, c, what, a, b, secret, headers);
        return;
    }
    for (size_t i = 0; b != NULL && b->type == SL_NODE_MAP && i < b->n; i++) {
        const struct sl_node *e = b->items[i], *o = sl_node_get(a, e->key);

        nodes(d, c, child_path(d, what, e), o, e,
              secret || secret_entry(b, e, headers) || (o != NULL && secret_entry(a, o, headers)),
              headers || header_word(e->key));
    }
    for (size_t i = 0; a != NULL && a->type == SL_NODE_MAP && i < a->n; i++) {
        const struct sl_node *e = a->items[i];

        if (sl_node_get(b, e->key) == NULL)
            nodes(d, c, child_path(d, what, e), e, NULL, secret || secret_entry(a, e, headers),
                  headers || header_word(e->key));
    }
}

void sl__diff_nodes(struct sl_diff *d, struct sl_diff_change *c, const char *what,
                    const struct sl_node *a, const struct sl_node *b)
{
    nodes(d, c, what, a, b, secret_name(what), header_word(what));
}
