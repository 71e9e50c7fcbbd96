/*
 * Admin query strings.
 */
#include "server/admin_query.h"

#include <ctype.h>
#include <string.h>

static int hex(char c)
{
    return isdigit((unsigned char)c)    ? c - '0'
           : isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10
                                        : -1;
}

/* Decode s[0..len) into out (room for len + 1); returns out, or NULL when
 * a byte decodes to a control character (NUL included). A '%' not
 * followed by two hex digits stays as it is. */
static char *decode(char *out, const char *s, size_t len)
{
    char *o = out;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            *o = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            *o = s[i] == '+' ? ' ' : s[i];
        }
        if ((unsigned char)*o < 0x20 || *o == 0x7f)
            return NULL;
        o++;
    }
    *o = '\0';
    return out;
}

static bool accepts(const char *const *accepted, const char *name)
{
    for (size_t i = 0; accepted != NULL && accepted[i] != NULL; i++)
        if (strcmp(accepted[i], name) == 0)
            return true;
    return false;
}

enum sl_query_result sl__query_parse(struct sl_query *q, const char *s, size_t len,
                                     const char *const *accepted)
{
    char *o = q->buf;
    const char *end = s + len;

    q->n = 0;
    q->bad = NULL;
    if (len > SL_QUERY_LEN) {
        q->bad = "(the query string is too long)";
        return SL_QUERY_UNKNOWN;
    }
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s)), *eq;
        size_t n = (size_t)((amp ? amp : end) - s), name_len;
        const char *name, *value = "";

        if (n == 0) {
            s = amp + 1;
            continue;
        }
        eq = memchr(s, '=', n);
        name_len = eq ? (size_t)(eq - s) : n;
        name = decode(o, s, name_len);
        if (name != NULL && eq != NULL)
            value = decode(o + strlen(name) + 1, eq + 1, n - name_len - 1);
        if (name == NULL || value == NULL) {
            /* The part as written: it fits where its decoding went. */
            memcpy(o, s, n);
            o[n] = '\0';
            q->bad = o;
            return SL_QUERY_CONTROL;
        }
        o += strlen(name) + 1;
        if (eq != NULL)
            o += strlen(value) + 1;
        q->bad = name;
        if (!accepts(accepted, name) || q->n == SL_QUERY_MAX)
            return SL_QUERY_UNKNOWN;
        if (sl__query_get(q, name) != NULL)
            return SL_QUERY_TWICE;
        q->name[q->n] = name;
        q->value[q->n++] = value;
        q->bad = NULL;
        if (amp == NULL)
            break;
        s = amp + 1;
    }
    return SL_QUERY_OK;
}

const char *sl__query_get(const struct sl_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->name[i], name) == 0)
            return q->value[i];
    return NULL;
}
