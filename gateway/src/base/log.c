/*
 * The error log. Each line is formatted into a stack buffer (a heap one for
 * log.format: json) and written with one write(2), so lines from different
 * workers never interleave.
 */
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "base/util.h"

int sl_log_level = SL_LOG_INFO;
_Thread_local const char *sl__log_thread = "main";

static struct sl_sink error_sink = {.fd = 2, .own = -1};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int sl__log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

int sl__sink_open(struct sl_sink *s, const char *path, const char *std_name, int std_fd)
{
    int fd;

    if (path == NULL) {
        atomic_store(&s->fd, -1); /* off; the descriptor stays for later */
        s->path[0] = '\0';
        return 0;
    }
    if (strcmp(path, std_name) == 0) {
        fd = fcntl(std_fd, F_DUPFD_CLOEXEC, 3);
        s->path[0] = '\0';
    } else {
        if (strlen(path) >= sizeof(s->path))
            return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd >= 0)
            snprintf(s->path, sizeof(s->path), "%s", path);
    }
    if (fd < 0)
        return -errno;
    if (s->own < 0) {
        s->own = fd;
    } else if (fd != s->own) {
        /* Replace what the stable number refers to, atomically for writers. */
        if (dup3(fd, s->own, O_CLOEXEC) < 0) {
            int e = -errno;

            close(fd);
            return e;
        }
        close(fd);
    }
    atomic_store(&s->fd, s->own);
    return 0;
}

int sl__sink_reopen(struct sl_sink *s)
{
    char path[sizeof(s->path)];

    if (s->path[0] == '\0')
        return 0;
    memcpy(path, s->path, sizeof(path));
    return sl__sink_open(s, path, "", -1);
}

int sl__log_open(const char *path)
{
    return sl__sink_open(&error_sink, path ? path : "stderr", "stderr", 2);
}

int sl__log_reopen(void)
{
    return sl__sink_reopen(&error_sink);
}

static void write_all(const char *text, size_t len)
{
    int fd = atomic_load(&error_sink.fd);

    while (len > 0) {
        ssize_t w = write(fd, text, len);

        if (w <= 0)
            return; /* nowhere left to complain to */
        text += w;
        len -= (size_t)w;
    }
}

static sl_log_context_fn *context;
static sl_log_json_context_fn *json_context;
static atomic_bool json_lines;

void sl__log_set_context(sl_log_context_fn *fn, sl_log_json_context_fn *json_fn)
{
    context = fn;
    json_context = json_fn;
}

void sl__log_set_json(bool on)
{
    atomic_store(&json_lines, on);
}

static const char *level_name(enum sl_log_level level)
{
    return level_names[level < 0 || level > 3 ? 0 : level];
}

/* {"ts":"2026-12-02T01:55:23.338Z","level":"warn","worker":"w0",
 *  "message":"...", the request's members} and a newline. */
static void write_json(enum sl_log_level level, struct sl_req *req, struct sl_str msg)
{
    struct sl_sbuf b = {0};
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    sl__sbuf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"worker\":", when,
                    ts.tv_nsec / 1000000, level_name(level));
    sl__sbuf_json(&b, sl_str_from(sl__log_thread));
    sl__sbuf_lit(&b, ",\"message\":");
    sl__sbuf_json(&b, msg);
    if (req != NULL && json_context != NULL)
        json_context(req, &b);
    sl__sbuf_lit(&b, "}\n");
    write_all(b.p, b.len);
    sl__sbuf_free(&b);
}

void sl__log_report(enum sl_log_level level, const char *text)
{
    size_t len = strlen(text);

    if (!atomic_load(&json_lines)) {
        write_all(text, len);
        return;
    }
    while (len > 0 && text[len - 1] == '\n')
        len--;
    write_json(level, NULL, (struct sl_str){text, len});
}

void sl_log_write(enum sl_log_level level, struct sl_req *req, const char *fmt, ...)
{
    char line[2048];
    size_t n, cap = sizeof(line) - 1;
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int r;

    if (atomic_load(&json_lines)) {
        va_start(ap, fmt);
        r = vsnprintf(line, cap, fmt, ap);
        va_end(ap);
        write_json(level, req, (struct sl_str){line, r > 0 ? SL_MIN((size_t)r, cap - 1) : 0});
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, cap, "%Y/%m/%d %H:%M:%S", &tm);
    r = snprintf(line + n, cap - n, ".%03ld [%s] %s: ", ts.tv_nsec / 1000000, level_name(level),
                 sl__log_thread);
    n += r > 0 ? (size_t)r : 0;

    va_start(ap, fmt);
    r = vsnprintf(line + n, cap - n, fmt, ap);
    va_end(ap);
    n = r > 0 ? SL_MIN(n + (size_t)r, cap) : n;

    if (req != NULL && n < cap && context != NULL)
        n += SL_MIN(context(req, line + n, cap - n), cap - n);
    line[n++] = '\n';
    if (write(atomic_load(&error_sink.fd), line, n) < 0) {
        /* Nowhere left to complain to. */
    }
}
