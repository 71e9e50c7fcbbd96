/*
 * libyaml's event stream turned into a tree that remembers where each node
 * was written, so that every later check can point at the line and column.
 */
#include "conf/yaml_tree.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf_read.h"
#include "base/util.h"

#define MAX_DEPTH 64

struct anchor {
    const char *name;
    struct sl_node *node;
    struct anchor *next;
};

struct loader {
    struct sl_conf_ctx *ctx;
    struct sl_arena *arena;
    yaml_parser_t parser;
    struct anchor *anchors;
    int depth;
    bool failed; /* a syntax error: the tree is unusable */
};

/* Growable child list, built in heap memory then copied to the arena. */
struct list {
    struct sl_node **items;
    size_t n, cap;
};

static void list_push(struct list *l, struct sl_node *n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = sl__xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = n;
}

static struct sl_node *new_node(struct loader *ld, enum sl_node_type type, yaml_mark_t mark)
{
    struct sl_node *n = sl_arena_calloc(ld->arena, sizeof(*n));

    n->type = type;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    n->index = -1;
    return n;
}

/* sl__env_expand(), also saying in *used whether a variable's value (not
 * a default written in the text) went into the result, and giving each
 * such value to ctx (if not NULL), which keeps it out of its messages. */
static char *expand(struct sl_arena *a, const char *s, size_t len, const char **missing, bool *used,
                    struct sl_conf_ctx *ctx)
{
    size_t cap = len + 1, n = 0, i = 0;
    char *out = sl__xmalloc(cap), *res;

    *missing = NULL;
    *used = false;
    while (i < len) {
        const char *name, *def = NULL, *val;
        size_t nlen, dlen = 0, vlen, j;

        if (s[i] == '$' && i + 1 < len && s[i + 1] == '$') {
            out[n++] = '$';
            i += 2;
            continue;
        }
        if (!(s[i] == '$' && i + 1 < len && s[i + 1] == '{')) {
            out[n++] = s[i++];
            continue;
        }
        name = s + i + 2;
        for (j = i + 2; j < len && s[j] != '}'; j++)
            ;
        if (j == len) { /* no closing brace: keep the text as written */
            out[n++] = s[i++];
            continue;
        }
        nlen = (size_t)(s + j - name);
        for (size_t k = 0; k + 1 < nlen; k++) {
            if (name[k] == ':' && name[k + 1] == '-') {
                def = name + k + 2;
                dlen = nlen - k - 2;
                nlen = k;
                break;
            }
        }
        {
            char key[256];

            if (nlen == 0 || nlen >= sizeof(key)) {
                *missing = sl_arena_strndup(a, name, nlen);
                free(out);
                return NULL;
            }
            memcpy(key, name, nlen);
            key[nlen] = '\0';
            val = getenv(key);
            if (val != NULL && val[0] == '\0' && def != NULL)
                val = NULL; /* as in the shell, ${A:-d} also covers an empty A */
            if (val == NULL && def == NULL) {
                *missing = sl_arena_strndup(a, key, nlen);
                free(out);
                return NULL;
            }
        }
        if (val == NULL) {
            val = def;
            vlen = dlen;
        } else {
            vlen = strlen(val);
            *used = true;
            if (ctx != NULL)
                sl__conf_env_value(ctx, val, vlen);
        }
        if (n + vlen + (len - j) + 1 > cap) {
            cap = n + vlen + (len - j) + 1;
            out = sl__xrealloc(out, cap);
        }
        memcpy(out + n, val, vlen);
        n += vlen;
        i = j + 1;
    }
    res = sl_arena_strndup(a, out, n);
    free(out);
    return res;
}

char *sl__env_expand(struct sl_arena *a, const char *s, size_t len, const char **missing)
{
    bool used;

    return expand(a, s, len, missing, &used, NULL);
}

static struct sl_node *parse_node(struct loader *ld, yaml_event_t *ev);

/* Mark n invalid with a message; it is reported when the tree is complete,
 * so that the message can carry the node's key path. */
static void flag(struct loader *ld, struct sl_node *n, bool at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void flag(struct loader *ld, struct sl_node *n, bool at_key, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    n->problem = sl_arena_vprintf(ld->arena, fmt, ap);
    va_end(ap);
    n->problem_at_key = at_key;
    n->invalid = true;
}

static void report_flagged(struct sl_conf_ctx *ctx, const struct sl_node *n, int depth)
{
    if (n->problem != NULL) {
        if (n->problem_at_key && n->key != NULL)
            sl__conf_error_key(ctx, n, "%s", n->problem);
        else
            sl_conf_error(ctx, n, "%s", n->problem);
    }
    if ((n->type == SL_NODE_MAP || n->type == SL_NODE_SEQ) && depth < MAX_DEPTH)
        for (size_t i = 0; i < n->n; i++)
            report_flagged(ctx, n->items[i], depth + 1);
}

static bool next_event(struct loader *ld, yaml_event_t *ev)
{
    if (yaml_parser_parse(&ld->parser, ev))
        return true;
    sl__conf_syntax_error(ld->ctx, (int)ld->parser.problem_mark.line + 1,
                          (int)ld->parser.problem_mark.column + 1, ld->parser.problem,
                          ld->parser.context);
    ld->failed = true;
    return false;
}

static void remember_anchor(struct loader *ld, const yaml_char_t *anchor, struct sl_node *n)
{
    struct anchor *a;

    if (anchor == NULL)
        return;
    a = sl_arena_alloc(ld->arena, sizeof(*a));
    a->name = sl_arena_strndup(ld->arena, (const char *)anchor, strlen((const char *)anchor));
    a->node = n;
    a->next = ld->anchors;
    ld->anchors = a;
}

static struct sl_node *scalar(struct loader *ld, yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    struct sl_node *n;
    const char *missing;
    char *expanded;

    if (plain && (len == 0 || (len == 1 && text[0] == '~') ||
                  (len == 4 && (memcmp(text, "null", 4) == 0 || memcmp(text, "Null", 4) == 0 ||
                                memcmp(text, "NULL", 4) == 0)))) {
        n = new_node(ld, SL_NODE_NULL, ev->start_mark);
        n->text = "";
        return n;
    }
    n = new_node(ld, SL_NODE_SCALAR, ev->start_mark);
    n->quoted = !plain;
    if (memchr(text, '\0', len) != NULL) {
        /* "a\0b": every string is NUL-terminated past here, so it would be
         * cut short without a word. */
        n->text = "";
        flag(ld, n, false, "a NUL character (\\0) cannot be part of a value");
        return n;
    }
    /* Marked here, where the substitution happens, so that nothing later
     * has to guess from the source text (a block scalar or a quoted string
     * spans lines) whether a value is the environment's. */
    expanded = expand(ld->arena, text, len, &missing, &n->from_env, ld->ctx);
    if (expanded == NULL) {
        n->text = "";
        flag(ld, n, false, "environment variable \"%s\" is not set", missing);
    } else {
        n->text = expanded;
        n->len = strlen(expanded);
    }
    return n;
}

static struct sl_node *collection(struct loader *ld, yaml_event_t *start, bool map)
{
    struct sl_node *n = new_node(ld, map ? SL_NODE_MAP : SL_NODE_SEQ, start->start_mark);
    yaml_event_type_t end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    struct list l = {0};
    yaml_event_t ev;

    remember_anchor(ld, map ? start->data.mapping_start.anchor : start->data.sequence_start.anchor,
                    n);
    if (++ld->depth > MAX_DEPTH) {
        sl__conf_error_at(ld->ctx, n, "nested more than %d levels deep", MAX_DEPTH);
        ld->failed = true;
        return NULL;
    }
    for (;;) {
        struct sl_node *key = NULL, *val;

        if (!next_event(ld, &ev))
            goto fail;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        if (map) {
            key = parse_node(ld, &ev);
            yaml_event_delete(&ev);
            if (ld->failed)
                goto fail;
            if (key->type != SL_NODE_SCALAR) {
                sl__conf_error_at(ld->ctx, key, "a map key must be a plain string");
                key->invalid = true;
                key->text = "?";
            }
            if (!next_event(ld, &ev))
                goto fail;
        }
        val = parse_node(ld, &ev);
        yaml_event_delete(&ev);
        if (ld->failed)
            goto fail;
        if (map) {
            /* An alias shares its node; give the map entry its own copy of
             * the node header so key and parent are right for this place. */
            struct sl_node *entry = sl_arena_alloc(ld->arena, sizeof(*entry));

            *entry = *val;
            entry->key = key->text;
            entry->key_from_env = key->from_env;
            entry->key_line = key->line;
            entry->key_col = key->col;
            entry->parent = n;
            for (size_t i = 0; i < l.n; i++) {
                if (strcmp(l.items[i]->key, entry->key) == 0) {
                    flag(ld, entry, true, "duplicate key (first set on line %d)",
                         l.items[i]->key_line);
                    break;
                }
            }
            list_push(&l, entry);
        } else {
            struct sl_node *item = sl_arena_alloc(ld->arena, sizeof(*item));

            *item = *val;
            item->parent = n;
            item->index = (int)l.n;
            list_push(&l, item);
        }
    }
    ld->depth--;
    n->n = l.n;
    n->items = sl_arena_alloc(ld->arena, (l.n ? l.n : 1) * sizeof(*n->items));
    if (l.n)
        memcpy(n->items, l.items, l.n * sizeof(*n->items));
    /* Children were copied before this node's list was final: re-point
     * grandchildren at the copies, which are what callers will walk. */
    for (size_t i = 0; i < n->n; i++)
        for (size_t j = 0; j < n->items[i]->n; j++)
            n->items[i]->items[j]->parent = n->items[i];
    free(l.items);
    return n;

fail:
    free(l.items);
    return NULL;
}

static struct sl_node *parse_node(struct loader *ld, yaml_event_t *ev)
{
    struct sl_node *n;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = scalar(ld, ev);
        remember_anchor(ld, ev->data.scalar.anchor, n);
        return n;
    case YAML_MAPPING_START_EVENT:
        return collection(ld, ev, true);
    case YAML_SEQUENCE_START_EVENT:
        return collection(ld, ev, false);
    case YAML_ALIAS_EVENT:
        for (struct anchor *a = ld->anchors; a; a = a->next)
            if (strcmp(a->name, (const char *)ev->data.alias.anchor) == 0)
                return a->node;
        n = new_node(ld, SL_NODE_NULL, ev->start_mark);
        flag(ld, n, false, "unknown anchor \"*%s\"", ev->data.alias.anchor);
        return n;
    default:
        n = new_node(ld, SL_NODE_NULL, ev->start_mark);
        sl__conf_error_at(ld->ctx, n, "unexpected YAML construct");
        ld->failed = true;
        return n;
    }
}

const struct sl_node *sl__yaml_load(struct sl_conf_ctx *ctx, const char *text, size_t len)
{
    struct loader ld = {.ctx = ctx, .arena = sl_conf_arena(ctx)};
    struct sl_node *root = NULL;
    yaml_event_t ev;

    yaml_parser_initialize(&ld.parser);
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    for (;;) {
        if (!next_event(&ld, &ev))
            break;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT && root != NULL) {
            sl__conf_syntax_error(ctx, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                                  "only one YAML document is allowed", NULL);
            yaml_event_delete(&ev);
            ld.failed = true;
            break;
        }
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
            ev.type == YAML_SCALAR_EVENT || ev.type == YAML_ALIAS_EVENT) {
            root = parse_node(&ld, &ev);
            yaml_event_delete(&ev);
            if (ld.failed)
                break;
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ld.parser);
    if (ld.failed)
        return NULL;
    if (root == NULL) {
        yaml_mark_t m = {0};

        root = new_node(&ld, SL_NODE_MAP, m);
        root->items = sl_arena_alloc(ld.arena, sizeof(*root->items));
    }
    report_flagged(ctx, root, 0);
    return root;
}
