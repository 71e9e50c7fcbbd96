/*
 * The error log's sink and the worker name in each line. The public side is
 * sluice/log.h.
 */
#ifndef SL_LOG_PRIVATE_H
#define SL_LOG_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

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

/*
 * The request context an error line about a request ends with (", while
 * <action>, client: <addr>, request: \"<method> <path>\", id: <id>"):
 * written by the HTTP layer, which installs it once at start with
 * sl__log_set_context() (nginx's log->handler). Writes at most size bytes
 * into buf and returns how many it wrote.
 */
typedef size_t sl_log_context_fn(struct sl_req *req, char *buf, size_t size);

/* The same context as JSON members for log.format: json, each preceded by
 * a comma (,"client":"...","method":"GET",...), appended to b. */
struct sl_sbuf;
typedef void sl_log_json_context_fn(struct sl_req *req, struct sl_sbuf *b);
void sl__log_set_context(sl_log_context_fn *fn, sl_log_json_context_fn *json_fn);

/* Lines as one JSON object each (log.format: json) or as text. */
void sl__log_set_json(bool on);

/* A report already formatted (a config's errors or warnings, several lines
 * with carets): as it is, or in JSON mode one object whose message is the
 * whole report. */
void sl__log_report(enum sl_log_level level, const char *text);

/*
 * A log destination whose file descriptor number never changes once opened:
 * reopening or switching files dup2()s the new file over it, so a worker
 * that loaded the number a moment ago never writes to a descriptor that
 * was closed and reused for a socket meanwhile.
 */
struct sl_sink {
    atomic_int fd; /* what writers use; -1: off */
    int own;       /* our stable descriptor, -1 until first opened */
    char path[4096];
};

/*
 * Point sink at path: NULL turns it off, std_name ("stdout"/"stderr") means
 * std_fd, anything else is a file opened for append. Main thread; 0 or a
 * negative errno (the sink is unchanged then).
 */
int sl__sink_open(struct sl_sink *s, const char *path, const char *std_name, int std_fd);

/* Open the file again (after rotation); a no-op for the std streams. */
int sl__sink_reopen(struct sl_sink *s);

/* "error", "warn", "info", "debug" -> level, or -1. */
int sl__log_level_parse(const char *name);

#endif
