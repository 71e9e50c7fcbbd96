/*
 * Access log lines.
 */
#include "http/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "config/gen.h"
#include "base/log.h"
#include "http/connection.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "core/worker.h"

static struct sl_sink sink = {.fd = -1, .own = -1};

int sl__access_log_open(const char *path)
{
    return sl__sink_open(&sink, path, "stdout", 1);
}

int sl__access_log_reopen(void)
{
    return sl__sink_reopen(&sink);
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

    if (atomic_load_explicit(&sink.fd, memory_order_relaxed) < 0)
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
    int fd = atomic_load_explicit(&sink.fd, memory_order_relaxed);
    size_t off = 0;

    if (fd < 0 || w->alog_len == 0) {
        w->alog_len = 0;
        return;
    }
    /* Write in pieces that end on a line and stay within PIPE_BUF, so lines
     * from different workers never interleave, even on a pipe. */
    while (off < w->alog_len) {
        size_t n = w->alog_len - off;

        if (n > 4096) {
            const char *p = w->alog + off + 4096;

            while (p > w->alog + off && p[-1] != '\n')
                p--;
            n = p > w->alog + off ? (size_t)(p - (w->alog + off)) : 4096;
        }
        ssize_t r = write(fd, w->alog + off, n);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            break; /* the sink is gone; drop what cannot be written */
        }
        off += (size_t)r;
    }
    w->alog_len = 0;
}
