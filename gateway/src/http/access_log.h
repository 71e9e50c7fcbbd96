/*
 * The access log: one JSON object per request, buffered per worker, handed
 * once per loop turn to a background writer thread (base/log_writer.h) so
 * that a slow disk or a full pipe never stalls a worker. Fields: ts,
 * request_id, client, method, path, status, bytes_in, bytes_out,
 * duration_ms, route, upstream, target, upstream_ms, ratelimit. The path is logged without its
 * query string, and no header value is logged, so tokens, cookies and passwords never are.
 */
#ifndef SL_ACCESS_LOG_H
#define SL_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

struct sl_req;
struct sl_worker;

/*
 * Point the access log at path: "stdout", a file path (a FIFO is opened
 * read-write and non-blocking, so neither the open nor a write waits for a
 * reader), or NULL (off); buffer is the size of the ring the background
 * writer drains (log.access_buffer). The same path again keeps the open
 * file. Lines already queued go to the old sink first. Main thread; 0 or a
 * negative errno (the old sink is kept then).
 */
int sl__access_log_open(const char *path, size_t buffer);

/* Reopen the file (SIGUSR1), once the lines queued so far went to the old
 * one, waiting up to a second for a stuck sink. While that switch is still
 * pending, a reopen replaces the descriptor waiting for it; and once a wait
 * timed out, it returns at once until the stuck lines are written, so the
 * main thread is held once per stuck spell. Main thread; 0, -ETIMEDOUT (the
 * switch happens later, in order) or a negative errno from the open. */
int sl__access_log_reopen(void);

/* Write what is queued (giving up on a sink that takes nothing for a
 * second), then stop the writer thread. Main thread, after the workers
 * stopped. */
void sl__access_log_close(void);

/* Format req's line into its worker's buffer, unless log.access_sample (or
 * the route's) leaves this successful request out. Errors (status >= 400)
 * are always logged. The worker's thread. */
void sl__access_log(struct sl_req *req);

/* Hand the worker's buffered lines to the background writer: never blocks
 * on I/O; lines that do not fit its buffer are dropped and counted. */
void sl__access_log_flush(struct sl_worker *w);

/* Free the worker thread's sampling counters; on that thread. */
void sl__access_log_thread_done(void);

/* Lines dropped so far (sluice_access_log_dropped_total). Any thread. */
uint64_t sl__access_log_dropped(void);

#endif
