/*
 * sluice - memory that must be had.
 *
 * For the few allocations a plugin makes outside the arenas (per-worker
 * state, a timer handle): they return the memory or end the process with a
 * message naming what could not be allocated, so an out-of-memory exit says
 * which plugin and what. Free with free().
 */
#ifndef SLUICE_ALLOC_H
#define SLUICE_ALLOC_H

#include <stddef.h>

/* Never NULL: the compiler may rely on it. */
#define SL_NONNULL_RESULT __attribute__((returns_nonnull, malloc))

void *sl_malloc(size_t n, const char *what) SL_NONNULL_RESULT;
void *sl_calloc(size_t n, size_t size, const char *what) SL_NONNULL_RESULT;
char *sl_strdup(const char *s, const char *what) SL_NONNULL_RESULT;

#endif
