/*
 * Small helpers every module uses: allocation that cannot fail, assertions
 * that stay on in release builds, and a few macros.
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define SL_ARRAY_LEN(a)                    (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b)                       ((a) > (b) ? (a) : (b))
#define SL_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Abort with file and line when cond holds: for broken invariants only. */
#define SL_BUG_ON(cond)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!!(cond), 0))                                                         \
            sl__bug(__FILE__, __LINE__, #cond);                                                    \
    } while (0)

__attribute__((noreturn)) void sl__bug(const char *file, int line, const char *what);

/* malloc family that abort with a message instead of returning NULL. */
void *sl__xmalloc(size_t n);
void *sl__xcalloc(size_t n, size_t size);
void *sl__xrealloc(void *p, size_t n);
char *sl__xstrdup(const char *s);

/* Milliseconds and nanoseconds of CLOCK_MONOTONIC / CLOCK_REALTIME. */
uint64_t sl__now_ms(void);

/* Free the arena chunks this thread keeps for reuse (base/arena.c): a
 * thread's last act. */
void sl__arena_thread_done(void);
uint64_t sl__mono_ns(void);

#endif
