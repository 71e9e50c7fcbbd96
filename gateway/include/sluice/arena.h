/*
 * sluice - region allocator.
 *
 * Two lifetimes use arenas: a request (reset between keep-alive requests, and
 * capped so that one request cannot take the worker's memory) and a config
 * generation (freed when the last request using that generation ends). Memory
 * from an arena is never freed one piece at a time.
 */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#include "sluice/str.h"

struct sl_arena_chunk;

struct sl_arena {
    struct sl_arena_chunk *head; /* chunk being carved, newest first */
    char *pos;                   /* next free byte in head */
    char *end;                   /* end of head */
    size_t chunk_size;           /* size of a regular chunk */
    size_t cap;                  /* most bytes held at once; 0 = no cap */
    size_t used;                 /* bytes of chunks currently held */
};

/* Initialise an empty arena. No memory is taken until the first allocation. */
void sl_arena_init(struct sl_arena *a, size_t chunk_size, size_t cap);

/* Free every chunk; the arena may be used again afterwards. */
void sl_arena_destroy(struct sl_arena *a);

/* Forget every allocation but keep the first chunk for reuse. */
void sl_arena_reset(struct sl_arena *a);

/*
 * Allocate n bytes aligned for any type. Returns NULL only when a capped
 * arena would exceed its cap (the caller fails its request with 500); an
 * uncapped arena aborts the process when malloc fails.
 */
void *sl_arena_alloc(struct sl_arena *a, size_t n);

/* Allocate n zeroed bytes; NULL as sl_arena_alloc(). */
void *sl_arena_calloc(struct sl_arena *a, size_t n);

/* Copy len bytes of s and add a NUL; NULL as sl_arena_alloc(). */
char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t len);

/* Copy a struct sl_str, NUL-terminated; NULL as sl_arena_alloc(). */
static inline char *sl_arena_strdup_str(struct sl_arena *a, struct sl_str s)
{
    return sl_arena_strndup(a, s.p, s.len);
}

/* printf into the arena; NULL as sl_arena_alloc(). */
char *sl_arena_printf(struct sl_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *sl_arena_vprintf(struct sl_arena *a, const char *fmt, va_list ap);

#endif
