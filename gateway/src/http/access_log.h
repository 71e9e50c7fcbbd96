/*
 * The access log: one JSON object per request, buffered per worker and
 * written once per loop turn. Fields: ts, request_id, client, method, path,
 * status, bytes_in, bytes_out, duration_ms, route, upstream, target,
 * upstream_ms, ratelimit. The path is logged without its query string, and
 * no header value is logged, so tokens, cookies and passwords never are.
 */
#ifndef SL_ACCESS_LOG_H
#define SL_ACCESS_LOG_H

struct sl_req;
struct sl_worker;

/* Open the sink named by the config: "stdout", a file path, or NULL (off).
 * Main thread; 0 or a negative errno. */
int sl__access_log_open(const char *path);

/* Reopen the file (SIGUSR1). */
int sl__access_log_reopen(void);

/* Format req's line into its worker's buffer. */
void sl__access_log(struct sl_req *req);

/* Write the worker's buffered lines. */
void sl__access_log_flush(struct sl_worker *w);

#endif
