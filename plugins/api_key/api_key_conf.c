/*
 * api_key plugin: its YAML, and the key file it names (read again by every
 * load, so a reload picks up an edited file).
 *
 *   api_key:
 *     keys: [{consumer: alice, key: "${ALICE_KEY}"}]
 *     file: /etc/sluice/api-keys     # "consumer: key" lines, '#' comments
 *     header: X-Api-Key              # the default; off: not from a header
 *     query: api_key                 # default: not from the URL
 *     hide_credentials: true         # the key does not go upstream
 *
 * Only each key's SHA-256 is kept; a key never appears in a message, and
 * the lines of the file that hold one are never quoted under a message
 * (sl_conf_secret()).
 */
#include "api_key.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"

/* The characters of an HTTP token (RFC 9110 5.6.2): a header name. */
#define ALNUM  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define TCHARS "!#$%&'*+-.^_`|~" ALNUM
/* A query parameter's name: a token too (it goes in the 401's challenge as
 * a quoted string), without what a query string or its decoding reads
 * otherwise ('&' and '#' end it, '%' and '+' decode). */
#define QCHARS "!$'*-.^_`|~" ALNUM

/* A key read, on its way to the table. */
struct entry {
    unsigned char digest[AK_DIGEST];
    const char *consumer;       /* in the generation arena */
    const struct sl_node *node; /* where to report it */
    const char *file;           /* its key file, or NULL (from keys:) */
    int line;
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

static void add(struct entries *es, const struct entry *e)
{
    if (es->n == es->cap) {
        struct entry *v = sl_malloc((es->cap ? es->cap * 2 : 16) * sizeof(*v), "api keys");

        if (es->n > 0)
            memcpy(v, es->v, es->n * sizeof(*v));
        free(es->v);
        es->v = v;
        es->cap = es->cap ? es->cap * 2 : 16;
    }
    es->v[es->n++] = *e;
}

/* An error about entry e: at its node, and in its file's terms. */
static void report(struct sl_conf_ctx *ctx, const struct entry *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct sl_conf_ctx *ctx, const struct entry *e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (e->file != NULL)
        sl_conf_error(ctx, e->node, "%s:%d: %s", e->file, e->line, msg);
    else
        sl_conf_error(ctx, e->node, "%s", msg);
}

/* Declare every line under keys: that may hold a key a secret, before
 * anything reports on it: every scalar but a consumer's name (in block
 * style each is on its own line; in flow style the key hides its item's
 * line, consumer and all). A keys: of the wrong shape is covered too. */
static void hide_keys(struct sl_conf_ctx *ctx, const struct sl_node *n)
{
    if (n->type == SL_NODE_SCALAR) {
        if (n->key == NULL || strcmp(n->key, "consumer") != 0)
            sl_conf_secret(ctx, n);
        return;
    }
    for (size_t i = 0; (n->type == SL_NODE_MAP || n->type == SL_NODE_SEQ) && i < n->n; i++)
        hide_keys(ctx, n->items[i]);
}

static void read_keys(struct sl_conf_ctx *ctx, const struct sl_node *node, struct entries *es)
{
    static const char *const keys[] = {"consumer", "key", NULL};
    const struct sl_node *seq = sl_node_get(node, "keys");

    if (seq == NULL)
        return;
    hide_keys(ctx, seq);
    if (seq->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, seq, "expected a list of {consumer, key}, found %s",
                      sl_node_type_name(seq));
        return;
    }
    for (size_t i = 0; i < seq->n; i++) {
        const struct sl_node *item = seq->items[i];
        struct entry e = {.node = item};
        const char *consumer = NULL, *key = NULL, *why;

        if (sl_conf_keys(ctx, item, keys) != 0 && item->type != SL_NODE_MAP)
            continue;
        if (sl_conf_str(ctx, item, "consumer", &consumer, true) == 0 &&
            (why = sl__ak_consumer_problem(consumer)) != NULL)
            sl_conf_error(ctx, sl_node_get(item, "consumer"), "%s, found \"%s\"", why, consumer);
        if (sl_conf_str(ctx, item, "key", &key, true) == 0 &&
            (why = sl__ak_key_problem(key)) != NULL)
            sl_conf_error(ctx, sl_node_get(item, "key"), "%s", why);
        if (consumer == NULL || key == NULL)
            continue;
        e.consumer = consumer;
        e.node = sl_node_get(item, "key");
        sl__ak_digest(key, strlen(key), e.digest);
        add(es, &e);
    }
}

static void read_file(struct sl_conf_ctx *ctx, const struct sl_node *node, struct entries *es)
{
    const struct sl_node *fn = sl_node_get(node, "file");
    const char *path = NULL, *consumer, *key, *why;
    struct ak_file kf;
    int r;

    if (sl_conf_str(ctx, node, "file", &path, false) != 0)
        return;
    if (sl__ak_file_open(&kf, path) != 0) {
        sl_conf_error(ctx, fn, "cannot read the key file %s: %s", path, strerror(errno));
        return;
    }
    while ((r = sl__ak_file_next(&kf, &why)) != 0) {
        struct entry e = {.node = fn, .file = path, .line = kf.line};

        if (r == -2) {
            sl_conf_error(ctx, fn, "cannot read the key file %s: %s", path, strerror(errno));
            break;
        }
        if (r > 0)
            r = sl__ak_parse_line(kf.buf, &consumer, &key, &why);
        if (r < 0)
            report(ctx, &e, "%s", why);
        if (r <= 0)
            continue;
        e.consumer = sl_arena_strndup(sl_conf_arena(ctx), consumer, strlen(consumer));
        sl__ak_digest(key, strlen(key), e.digest);
        add(es, &e);
    }
    sl__ak_file_close(&kf); /* wipes the line and the stream's buffer */
}

/* The table of es, or an error for each key given twice. */
static int build(struct sl_conf_ctx *ctx, const struct entries *es, struct ak_table *t)
{
    size_t size = 4;
    int bad = 0;

    while (size < 2 * es->n)
        size *= 2;
    t->slots = sl_arena_calloc(sl_conf_arena(ctx), size * sizeof(*t->slots));
    t->mask = size - 1;
    for (size_t i = 0; i < es->n; i++) {
        const char *other = sl__ak_put(t, es->v[i].digest, es->v[i].consumer);

        if (other != NULL) {
            report(ctx, &es->v[i],
                   "consumer %s has the same key as consumer %s: every key "
                   "must name one consumer",
                   es->v[i].consumer, other);
            bad = -1;
        }
    }
    return bad;
}

/* Whether s is one or more of the characters of set. */
static bool made_of(const char *s, const char *set)
{
    return s[0] != '\0' && strspn(s, set) == strlen(s);
}

/* s as a message may quote it: visible ASCII as it is, any other byte
 * (a CR or LF above all) as \xNN. In the generation arena. */
static const char *printable(struct sl_arena *a, const char *s)
{
    char *out = sl_arena_alloc(a, strlen(s) * 4 + 1), *p = out;

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            *p++ = (char)ch;
        else
            p += sprintf(p, "\\x%02x", ch);
    }
    *p = '\0';
    return out;
}

/* Where the key is read, and what a 401 says about it. */
static void read_sources(struct sl_conf_ctx *ctx, const struct sl_node *node, struct ak_conf *c)
{
    struct sl_arena *a = sl_conf_arena(ctx);

    sl_conf_str(ctx, node, "header", &c->header, false);
    sl_conf_str(ctx, node, "query", &c->query, false);
    if (c->header != NULL && strcmp(c->header, "off") == 0)
        c->header = NULL;
    /* Both go in every 401's WWW-Authenticate, as quoted strings: a CR, LF,
     * '"' or space there would split or forge the answer. */
    if (c->header != NULL && !made_of(c->header, TCHARS))
        sl_conf_error(ctx, sl_node_get(node, "header"),
                      "expected a header name (an RFC 9110 token: letters, digits and "
                      "!#$%%&'*+-.^_`|~), found \"%s\"",
                      printable(a, c->header));
    if (c->query != NULL && !made_of(c->query, QCHARS))
        sl_conf_error(ctx, sl_node_get(node, "query"),
                      "expected a query parameter name (an RFC 9110 token without & # %% +: "
                      "letters, digits and !$'*-.^_`|~), found \"%s\"",
                      printable(a, c->query));
    if (c->header == NULL && c->query == NULL)
        sl_conf_error(ctx, sl_node_get(node, "header"),
                      "header: off needs query: (where else would the key come from?)");
    c->challenge = c->header == NULL  ? sl_arena_printf(a, "ApiKey query=\"%s\"", c->query)
                   : c->query == NULL ? sl_arena_printf(a, "ApiKey header=\"%s\"", c->header)
                                      : sl_arena_printf(a, "ApiKey header=\"%s\", query=\"%s\"",
                                                        c->header, c->query);
}

void *sl__api_key_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"keys", "file", "header", "query", "hide_credentials", NULL};
    struct ak_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);
    struct entries es = {0};

    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    c->header = "X-Api-Key";
    c->hide_credentials = true;
    read_sources(ctx, node, c);
    sl_conf_bool(ctx, node, "hide_credentials", &c->hide_credentials, false);
    if (sl_node_get(node, "keys") == NULL && sl_node_get(node, "file") == NULL)
        sl_conf_error(ctx, node, "keys: or file: is required (the consumers and their keys)");
    read_keys(ctx, node, &es);
    read_file(ctx, node, &es);
    if (es.n == 0 && sl_node_get(node, "file") == NULL && sl_node_get(node, "keys") != NULL)
        sl_conf_error(ctx, sl_node_get(node, "keys"), "expected at least one key");
    if (sl_conf_errors(ctx) == errors)
        build(ctx, &es, &c->keys);
    free(es.v);
    /* Clients' X-Consumer (and X_Consumer) never reach the upstream as
     * ours; nor do twins of the key's header when it is hidden. */
    sl_conf_header_owned(ctx, "X-Consumer");
    if (c->hide_credentials && c->header != NULL)
        sl_conf_header_owned(ctx, c->header);
    return sl_conf_errors(ctx) == errors ? c : NULL;
}
