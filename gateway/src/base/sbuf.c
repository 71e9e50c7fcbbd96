/*
 * Text buffers.
 */
#include "base/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"

void sl__sbuf_reserve(struct sl_sbuf *b, size_t n)
{
    if (b->cap - b->len >= n + 1)
        return;
    b->cap = SL_MAX(b->cap * 2, b->len + n + 1);
    if (b->cap < 256)
        b->cap = 256;
    b->p = sl__xrealloc(b->p, b->cap);
}

void sl__sbuf_add(struct sl_sbuf *b, const char *s, size_t n)
{
    sl__sbuf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sl__sbuf_vprintf(struct sl_sbuf *b, const char *fmt, va_list ap)
{
    char measure[1]; /* vsnprintf(NULL, 0) upsets gcc's UBSan build */
    va_list copy;
    int n;

    if (fmt == NULL)
        return; /* never, but gcc's sanitizer build cannot tell */
    va_copy(copy, ap);
    n = vsnprintf(measure, 1, fmt, copy);
    va_end(copy);
    if (n <= 0)
        return;
    sl__sbuf_reserve(b, (size_t)n);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void sl__sbuf_printf(struct sl_sbuf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sl__sbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at s[i] (2 to 4), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c = s[i];
    size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;

    if (n == 0 || i + n > len)
        return 0;
    for (size_t k = 1; k < n; k++)
        if ((s[i + k] & 0xc0) != 0x80)
            return 0;
    return n;
}

void sl__sbuf_json(struct sl_sbuf *b, struct sl_str s)
{
    static const char hex[] = "0123456789abcdef";

    if (s.p == NULL) {
        sl__sbuf_add(b, "null", 4);
        return;
    }
    sl__sbuf_reserve(b, s.len * 6 + 2);
    b->p[b->len++] = '"';
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];

        if (c == '"' || c == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = (char)c;
        } else if (c >= 0x80) {
            /* Valid UTF-8 passes as it is; any other byte is escaped so the
             * line stays valid JSON. */
            size_t n = utf8_seq((const unsigned char *)s.p, s.len, i);

            if (n == 0)
                goto escape;
            memcpy(b->p + b->len, s.p + i, n);
            b->len += n;
            i += n - 1;
        } else if (c < 0x20 || c == 0x7f) {
        escape:
            b->p[b->len++] = '\\';
            b->p[b->len++] = 'u';
            b->p[b->len++] = '0';
            b->p[b->len++] = '0';
            b->p[b->len++] = hex[c >> 4];
            b->p[b->len++] = hex[c & 15];
        } else {
            b->p[b->len++] = (char)c;
        }
    }
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

void sl__sbuf_free(struct sl_sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
