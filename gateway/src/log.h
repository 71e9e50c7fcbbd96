/*
 * The error log's sink and the worker name in each line. The public side is
 * sluice/log.h.
 */
#ifndef SL_LOG_PRIVATE_H
#define SL_LOG_PRIVATE_H

#include "sluice/log.h"

/* The name of the thread in log lines ("main", "w0"...): thread-local. */
extern _Thread_local const char *sl__log_thread;

/*
 * Send error-log lines to path (opened for append), or to stderr when path is
 * NULL or "stderr". Main thread; returns 0 or a negative errno, keeping the
 * old sink on failure.
 */
int sl__log_open(const char *path);

/* Reopen the current file (after log rotation, on SIGUSR1). */
int sl__log_reopen(void);

/* "error", "warn", "info", "debug" -> level, or -1. */
int sl__log_level_parse(const char *name);

#endif
