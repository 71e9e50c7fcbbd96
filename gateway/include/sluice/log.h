/*
 * sluice - the error log.
 *
 * One line per event on stderr (or the file named by log.error), prefixed with
 * a timestamp, the level and the worker. The level is checked before anything
 * is formatted, so a debug line costs one comparison when debug is off.
 *
 * A line about a request ends with what the gateway was doing, the client, the
 * request line and the request id: pass the request and sl_log() appends all
 * of that. Never log a token, secret or cookie.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

struct sl_req;

enum sl_log_level {
    SL_LOG_ERROR = 0,
    SL_LOG_WARN = 1,
    SL_LOG_INFO = 2,
    SL_LOG_DEBUG = 3,
};

/* The level in force; lines above it are skipped. Set by the config. */
extern int sl_log_level;

#define sl_log(level, req, ...)                                                                    \
    do {                                                                                           \
        if ((int)(level) <= sl_log_level)                                                          \
            sl_log_write((level), (req), __VA_ARGS__);                                             \
    } while (0)

/*
 * Write one line. req may be NULL; when set, the request's context is added:
 * "while <action>, client: <addr>, request: \"<method> <path>\", id: <id>".
 */
void sl_log_write(enum sl_log_level level, struct sl_req *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
