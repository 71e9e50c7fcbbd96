/*
 * Access log lines: formatted on the worker, sampled by log.access_sample,
 * and written by the background writer (base/log_writer.c).
 */
#include "http/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "config/gen.h"
#include "base/log.h"
#include "base/log_writer.h"
#include "http/connection.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "core/worker.h"

/* How long a stuck sink may hold a reopen or the exit. */
#define STUCK_MS 1000

/* Started on the first open that is not "off"; written by the main thread
 * while workers may read it, so atomic. */
static _Atomic(struct sl_log_writer *) writer;
static atomic_bool on;
/* The sink now: "stdout", a path, or "" (off). Main thread. */
static char current[4096];

/* A file sink's descriptor. A FIFO is opened read-write: the open does not
 * wait for a reader, and a reader that comes and goes never turns writes
 * into EPIPE; with O_NONBLOCK a full FIFO answers EAGAIN, which the writer
 * waits out with poll() while workers drop what does not fit. */
static int open_file(const char *path)
{
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENXIO) /* it became a FIFO meanwhile */
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* What the writer calls the sink in its warnings. */
static const char *sink_name(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "access log %s", path);
    return buf;
}

int sl__access_log_open(const char *path, size_t buffer)
{
    struct sl_log_writer *wr = atomic_load(&writer);
    char name[sizeof(current) + 16];
    int fd;

    if (path != NULL && strlen(path) >= sizeof(current))
        return -ENAMETOOLONG;
    if (wr != NULL)
        sl__log_writer_resize(wr, buffer);
    if (path == NULL) {
        atomic_store(&on, false);
        if (wr != NULL && current[0] != '\0')
            sl__log_writer_set_fd(wr, -1, NULL, 0);
        current[0] = '\0';
        return 0;
    }
    if (strcmp(path, current) == 0) /* unchanged: keep writing where we do */
        return 0;
    if (strcmp(path, "stdout") == 0) {
        fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        fd = fd < 0 ? -errno : fd;
    } else {
        fd = open_file(path);
    }
    if (fd < 0)
        return fd;
    if (wr == NULL) {
        wr = sl__log_writer_start(buffer);
        atomic_store(&writer, wr);
    }
    sl__log_writer_set_fd(wr, fd, sink_name(path, name, sizeof(name)), 0);
    snprintf(current, sizeof(current), "%s", path);
    atomic_store(&on, true);
    return 0;
}

int sl__access_log_reopen(void)
{
    struct sl_log_writer *wr = atomic_load(&writer);
    char name[sizeof(current) + 16];
    int fd, rc;

    if (wr == NULL || current[0] == '\0' || strcmp(current, "stdout") == 0)
        return 0;
    fd = open_file(current);
    if (fd < 0)
        return fd;
    /* While an earlier reopen (or open) still waits behind a stuck sink,
     * this one takes its place at once: no pile of descriptors, and the
     * main thread waits for a stuck sink once, not once per SIGUSR1. */
    rc = sl__log_writer_reopen(wr, fd, sink_name(current, name, sizeof(name)), STUCK_MS);
    return rc == -EINPROGRESS ? 0 : rc;
}

void sl__access_log_close(void)
{
    struct sl_log_writer *wr = atomic_exchange(&writer, NULL);

    atomic_store(&on, false);
    current[0] = '\0';
    if (wr != NULL) {
        sl__log_writer_stop(wr, STUCK_MS);
        sl__log_writer_free(wr);
    }
}

uint64_t sl__access_log_dropped(void)
{
    struct sl_log_writer *wr = atomic_load(&writer);

    return wr != NULL ? sl__log_writer_dropped(wr) : 0;
}

/* Per worker thread: successful requests seen, per route (slot 0: no
 * route), for log.access_sample. A counter, not a random draw, so exactly
 * 1 in N is kept. */
static _Thread_local uint32_t *seen;
static _Thread_local size_t n_seen;

void sl__access_log_thread_done(void)
{
    free(seen);
    seen = NULL;
    n_seen = 0;
}

/* Whether req's line is written: every error (and a request that got no
 * status), and the first of every N successful ones. */
static bool sampled(const struct sl_req *req)
{
    uint32_t n = req->gen != NULL ? req->gen->conf->access_sample : 1;
    size_t slot = req->route != NULL ? req->route->index + 1 : 0;

    if (req->route != NULL && req->route->access_sample != 0)
        n = req->route->access_sample;
    if (n <= 1 || req->status >= 400 || req->status < 100)
        return true;
    if (slot >= n_seen) {
        size_t n_new = slot + 16;
        uint32_t *p = realloc(seen, n_new * sizeof(*p));

        if (p == NULL)
            return true;
        memset(p + n_seen, 0, (n_new - n_seen) * sizeof(*p));
        seen = p;
        n_seen = n_new;
    }
    return seen[slot]++ % n == 0;
}

/* The core's own fields, in the order written; a plugin field with one of
 * these names is not written (it would make a duplicate JSON key). */
static const char *const core_fields[] = {"ts",          "request_id", "client",   "method",
                                          "path",        "status",     "bytes_in", "bytes_out",
                                          "duration_ms", "route",      "upstream", "target",
                                          "upstream_ms", "error",      NULL};

/* Fields the contract lists that a plugin fills: always present, null when
 * no plugin set them (a route without rate limits has "ratelimit": null). */
static const char *const contract_fields[] = {"ratelimit", NULL};

static bool listed(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static struct sl_str field(const struct sl_req *req, const char *name)
{
    for (const struct sl_kv *kv = req->log_fields; kv; kv = kv->next)
        if (strcmp(kv->name, name) == 0)
            return kv->value;
    return SL_STR_NULL;
}

static void add_str(struct sl_sbuf *b, const char *key, struct sl_str v)
{
    sl__sbuf_printf(b, ", \"%s\": ", key);
    sl__sbuf_json(b, v);
}

static void add_plugin_fields(struct sl_sbuf *b, const struct sl_kv *kv)
{
    for (; kv != NULL; kv = kv->next) {
        if (listed(core_fields, kv->name) || listed(contract_fields, kv->name))
            continue;
        /* A plugin's name may come from its config: escaped like a value. */
        sl__sbuf_lit(b, ", ");
        sl__sbuf_json(b, sl_str_from(kv->name));
        sl__sbuf_lit(b, ": ");
        sl__sbuf_json(b, kv->value);
    }
}

void sl__access_log(struct sl_req *req)
{
    struct sl_worker *w = sl__req_worker(req);
    struct sl_sbuf b = {.p = w->alog, .len = w->alog_len, .cap = w->alog_cap};
    uint64_t now_ns = sl__mono_ns();
    struct timespec ts;
    struct tm tm;
    char when[40];

    if (!atomic_load_explicit(&on, memory_order_relaxed) || !sampled(req))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    sl__sbuf_printf(&b, "{\"ts\": \"%s.%03ldZ\"", when, ts.tv_nsec / 1000000);
    add_str(&b, "request_id", req->id[0] ? sl_str_from(req->id) : SL_STR_NULL);
    add_str(&b, "client", sl_str_from(sl_req_client_ip(req)));
    add_str(&b, "method", req->method_s.p ? req->method_s : SL_STR_NULL);
    add_str(&b, "path", req->path.p ? req->path : SL_STR_NULL);
    sl__sbuf_printf(&b, ", \"status\": %d, \"bytes_in\": %llu, \"bytes_out\": %llu", req->status,
                    (unsigned long long)(req->head_bytes + req->body_bytes),
                    (unsigned long long)sl__req_bytes_out(req));
    sl__sbuf_printf(&b, ", \"duration_ms\": %.3f", (double)(now_ns - req->start_ns) / 1e6);
    add_str(&b, "route", req->route ? sl_str_from(req->route->name) : SL_STR_NULL);
    add_str(&b, "upstream", req->upstream ? sl_str_from(req->upstream->conf->name) : SL_STR_NULL);
    add_str(&b, "target", req->target ? sl_str_from(req->target->conf->ip) : SL_STR_NULL);
    if (req->up_start_ns != 0)
        sl__sbuf_printf(&b, ", \"upstream_ms\": %.3f", (double)req->up_ms / 1e3);
    else
        sl__sbuf_lit(&b, ", \"upstream_ms\": null");
    for (size_t i = 0; contract_fields[i] != NULL; i++)
        add_str(&b, contract_fields[i], field(req, contract_fields[i]));
    if (req->error_code != NULL)
        add_str(&b, "error", sl_str_from(req->error_code));
    /* Every other field a plugin set, in the order set. */
    add_plugin_fields(&b, req->log_fields);
    sl__sbuf_lit(&b, "}\n");
    w->alog = b.p;
    w->alog_len = b.len;
    w->alog_cap = b.cap;
    if (w->alog_len > 64 * 1024)
        sl__access_log_flush(w);
}

void sl__access_log_flush(struct sl_worker *w)
{
    struct sl_log_writer *wr;

    if (w->alog_len == 0)
        return;
    wr = atomic_load_explicit(&writer, memory_order_acquire);
    if (wr != NULL && atomic_load_explicit(&on, memory_order_relaxed))
        sl__log_writer_append(wr, w->alog, w->alog_len);
    w->alog_len = 0;
}
