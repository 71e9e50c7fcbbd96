/*
 * Which request header names the gateway owns, matched the way backends
 * that fold '_' and '-' alike would match them (header_names.h).
 */
#include "base/header_names.h"

#include <string.h>

/* Names the gateway itself sets or strips on every proxied request. */
#define NAME(s)                                                                                    \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
static const struct sl_str builtin[] = {
    NAME("Host"),
    NAME("Content-Length"),
    NAME("Transfer-Encoding"),
    NAME("Connection"),
    NAME("Keep-Alive"),
    NAME("Proxy-Connection"),
    NAME("TE"),
    NAME("Trailer"),
    NAME("Upgrade"),
    NAME("Expect"),
    NAME("X-Forwarded-For"),
    NAME("X-Forwarded-Proto"),
    NAME("X-Forwarded-Host"),
    NAME("X-Client-Cert-Subject"),
};
#undef NAME

static int fold(int c)
{
    if (c == '_')
        return '-';
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

bool sl__header_fold_eq(struct sl_str a, struct sl_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (fold((unsigned char)a.p[i]) != fold((unsigned char)b.p[i]))
            return false;
    return true;
}

bool sl__header_owned(const struct sl_header_names *declared, struct sl_str name)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (sl__header_fold_eq(name, builtin[i]))
            return true;
    for (size_t i = 0; declared != NULL && i < declared->n; i++)
        if (sl__header_fold_eq(name, declared->names[i]))
            return true;
    return false;
}

void sl__header_names_add(struct sl_header_names *l, struct sl_arena *a, const char *name)
{
    struct sl_str n = sl_str_from(name);

    for (size_t i = 0; i < l->n; i++)
        if (sl__header_fold_eq(n, l->names[i]))
            return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct sl_str *grown = sl_arena_alloc(a, cap * sizeof(*grown));

        if (l->n)
            memcpy(grown, l->names, l->n * sizeof(*grown));
        l->names = grown;
        l->cap = cap;
    }
    l->names[l->n++] = (struct sl_str){sl_arena_strndup(a, n.p, n.len), n.len};
}
