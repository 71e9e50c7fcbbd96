/*
 * The list of changes a reload would make, and its two renderings: JSON for
 * the admin API, one line per change for people (sluice -t --diff).
 */
#include "config/diff.h"

#include <stdio.h>
#include <string.h>

void sl__diff_init(struct sl_diff *d, struct sl_arena *a)
{
    d->arena = a;
    d->head = NULL;
    d->tail = &d->head;
    d->n = 0;
    d->from_a = d->from_b = NULL;
}

struct sl_diff_change *sl__diff_begin(struct sl_diff *d, const char *kind, const char *name,
                                      enum sl_diff_op op)
{
    struct sl_diff_change *c = sl_arena_calloc(d->arena, sizeof(*c));

    c->kind = kind;
    c->name = name;
    c->op = op;
    d->from_a = d->from_b = NULL;
    return c;
}

void sl__diff_detail(struct sl_diff *d, struct sl_diff_change *c, const char *fmt, ...)
{
    va_list ap;

    if (c->n_details == c->cap_details) {
        size_t cap = c->cap_details ? c->cap_details * 2 : 4;
        const char **grown = sl_arena_alloc(d->arena, cap * sizeof(*grown));

        if (c->n_details)
            memcpy(grown, c->details, c->n_details * sizeof(*grown));
        c->details = grown;
        c->cap_details = cap;
    }
    va_start(ap, fmt);
    c->details[c->n_details++] = sl_arena_vprintf(d->arena, fmt, ap);
    va_end(ap);
}

void sl__diff_end(struct sl_diff *d, struct sl_diff_change *c)
{
    if (c->op == SL_DIFF_CHANGED && c->n_details == 0)
        return; /* compared equal: the arena takes it back with the rest */
    *d->tail = c;
    d->tail = &c->next;
    d->n++;
}

static const char *const op_names[] = {"added", "removed", "changed"};

const char *sl__diff_op_name(enum sl_diff_op op)
{
    return op_names[op];
}

int sl__diff_op_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (strcmp(s, op_names[i]) == 0)
            return (int)i;
    return -1;
}

void sl__diff_json(const struct sl_diff *d, struct sl_sbuf *out)
{
    sl__sbuf_lit(out, "[");
    for (const struct sl_diff_change *c = d->head; c != NULL; c = c->next) {
        sl__sbuf_lit(out, c == d->head ? "{\"kind\": " : ", {\"kind\": ");
        sl__sbuf_json(out, sl_str_from(c->kind));
        sl__sbuf_lit(out, ", \"name\": ");
        sl__sbuf_json(out, sl_str_from(c->name));
        sl__sbuf_printf(out, ", \"change\": \"%s\", \"details\": [", op_names[c->op]);
        for (size_t i = 0; i < c->n_details; i++) {
            if (i)
                sl__sbuf_lit(out, ", ");
            sl__sbuf_json(out, sl_str_from(c->details[i]));
        }
        sl__sbuf_lit(out, "]}");
    }
    sl__sbuf_lit(out, "]");
}

void sl__diff_text(const struct sl_diff *d, struct sl_sbuf *out)
{
    static const char signs[] = {'+', '-', '~'};

    for (const struct sl_diff_change *c = d->head; c != NULL; c = c->next) {
        sl__sbuf_printf(out, "%c %s %s", signs[c->op], c->kind, c->name);
        for (size_t i = 0; i < c->n_details; i++)
            sl__sbuf_printf(out, "%s%s", i ? "; " : ": ", c->details[i]);
        sl__sbuf_lit(out, "\n");
    }
}
