/*
 * A growable text buffer, for building JSON (error bodies, access-log lines)
 * and other text of unknown length.
 */
#ifndef SL_SBUF_H
#define SL_SBUF_H

#include <stdarg.h>
#include <stddef.h>

#include "sluice/str.h"

struct sl_sbuf {
    char *p;
    size_t len, cap;
};

void sl__sbuf_reserve(struct sl_sbuf *b, size_t n);
void sl__sbuf_add(struct sl_sbuf *b, const char *s, size_t n);
void sl__sbuf_printf(struct sl_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl__sbuf_vprintf(struct sl_sbuf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Append s as a JSON string, quotes included (NULL p becomes null). */
void sl__sbuf_json(struct sl_sbuf *b, struct sl_str s);

static inline void sl__sbuf_lit(struct sl_sbuf *b, const char *s)
{
    sl__sbuf_add(b, s, strlen(s));
}

void sl__sbuf_free(struct sl_sbuf *b);

#endif
