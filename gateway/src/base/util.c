/*
 * Helpers: allocation failure aborts (there is nothing sensible a gateway
 * can do halfway through building a request without memory), BUG_ON.
 */
#include "base/util.h"

#include "sluice/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sl__bug(const char *file, int line, const char *what)
{
    fprintf(stderr, "sluice: BUG at %s:%d: %s\n", file, line, what);
    abort();
}

static void *oom_what(size_t n, const char *what)
{
    fprintf(stderr, "sluice: out of memory allocating %zu bytes for %s\n", n, what);
    abort();
}

static void *oom(size_t n)
{
    return oom_what(n, "the gateway");
}

void *sl_malloc(size_t n, const char *what)
{
    void *p = malloc(n ? n : 1);

    return p ? p : oom_what(n, what);
}

void *sl_calloc(size_t n, size_t size, const char *what)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    return p ? p : oom_what(n * size, what);
}

char *sl_strdup(const char *s, const char *what)
{
    size_t n = strlen(s) + 1;

    return memcpy(sl_malloc(n, what), s, n);
}

void *sl__xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    return p ? p : oom(n);
}

void *sl__xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    return p ? p : oom(n * size);
}

void *sl__xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    return q ? q : oom(n);
}

char *sl__xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(sl__xmalloc(n), s, n);
}

uint64_t sl__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t sl__mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
