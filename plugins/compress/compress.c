/*
 * compress plugin: gzip or brotli for proxied responses, chosen by the
 * request's Accept-Encoding (negotiate.c), streamed through a body filter
 * (codec.c) that writes what the compressor makes as it makes it, through
 * one fixed 16 KiB buffer per worker: a body of any size costs one
 * compressor state, never the body.
 *
 * Left alone, byte for byte: responses made by the gateway, without a body
 * (HEAD, 1xx, 204, 304), ranges (206, Content-Range), bodies already
 * encoded, Cache-Control: no-transform, types not configured, a
 * Content-Length below min_size, and clients that accept no coding the
 * plugin makes. A response compressible but for the client gets
 * Vary: Accept-Encoding all the same: a cache must not give its identity
 * body to a client that asks for gzip, nor the reverse.
 */
#include "compress.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"

#include "codec.h"

#define OUT_BUF (16 * 1024)

/* Per worker: where compressors write before sl_resp_body_write() takes
 * it; used within one body() call at a time, on the worker's loop. */
struct cz_worker {
    char out[OUT_BUF];
};

/* A filter's state: the stream, or NULL once the response turned out not
 * to be compressible after all (its headers could not be set): then the
 * body passes through as it is. */
struct cz_body {
    struct cz_stream *s;
};

static const char *const result_values[] = {"br", "gzip", "skipped", NULL};
static const struct sl_counter responses = {
    .name = "sluice_compress_responses_total",
    .help = "Responses the compress plugin saw, by route: compressed with br or gzip, or "
            "skipped.",
    .label = "result",
    .values = result_values,
};

static int write_out(void *arg, const char *p, size_t n)
{
    return sl_resp_body_write(arg, p, n);
}

static int on_body(struct sl_req *req, void *state, const char *p, size_t len, unsigned flags)
{
    struct cz_body *b = state;
    struct cz_worker *w = sl_req_worker_data(req, &sl_plugin_compress);

    if (b->s == NULL)
        return len > 0 ? sl_resp_body_write(req, p, len) : 0;
    return sl__cz_stream_feed(b->s, p, len, flags, w->out, sizeof(w->out), write_out, req);
}

static void on_done(void *state)
{
    struct cz_body *b = state;

    sl__cz_stream_free(b->s);
    free(b);
}

static const struct sl_body_filter filter = {.body = on_body, .done = on_done};

/* A Content-Length's value, or -1 when there is none (or it is not digits). */
static int64_t content_length(const struct sl_req *req)
{
    struct sl_str v = sl_resp_header(req, "Content-Length");
    int64_t n = 0;

    if (v.len == 0 || v.len > 18)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    return n;
}

/* Whether any line of the response called name lists token. */
static bool resp_lists(const struct sl_req *req, const char *name, const char *token)
{
    struct sl_str v;

    for (unsigned i = 0; (v = sl_resp_header_nth(req, name, i)).p != NULL; i++)
        if (sl__cz_list_has(v, token))
            return true;
    return false;
}

/*
 * Why this response is not one to compress for anybody, or NULL when it
 * is (and *size is its Content-Length, or -1 for a body of unknown length).
 */
static const char *unfit(struct sl_req *req, const struct cz_conf *c, int64_t *size)
{
    int status = sl_resp_status(req);
    struct sl_str ce = sl_resp_header(req, "Content-Encoding");

    if (!sl_resp_proxied(req))
        return "gateway";
    if (status < 200 || status == 204 || status == 304)
        return "status"; /* no body; 101 is a tunnel */
    if (status == 206 || sl_resp_header(req, "Content-Range").p != NULL)
        return "range"; /* a range of the identity body: compressing it changes its meaning */
    if (ce.p != NULL && !sl_str_caseeq_lit(ce, "identity"))
        return "encoded";
    if (resp_lists(req, "Cache-Control", "no-transform"))
        return "no_transform";
    if (!sl__cz_type_match(sl_resp_header(req, "Content-Type"), c->types, c->n_types))
        return "type";
    *size = content_length(req);
    if (*size == 0 || (*size > 0 && (uint64_t)*size < c->min_size))
        return "size";
    return NULL;
}

/* The coding this client gets, or CZ_IDENTITY. */
static enum cz_coding negotiate(struct sl_req *req, const struct cz_conf *c)
{
    unsigned n = sl_req_header_count(req, "Accept-Encoding");
    struct sl_str v = sl_req_header(req, "Accept-Encoding");
    struct cz_accept a;

    /* Several lines are one list (RFC 9110 5.3): joined with commas. A
     * list too large for the arena gets the body as it is (always
     * acceptable). */
    if (n > 1) {
        size_t len = 0;
        char *p;

        for (unsigned i = 0; i < n; i++)
            len += sl_req_header_nth(req, "Accept-Encoding", i).len + 1;
        if ((p = sl_arena_alloc(sl_req_arena(req), len)) == NULL)
            return CZ_IDENTITY;
        v = (struct sl_str){p, 0};
        for (unsigned i = 0; i < n; i++) {
            struct sl_str l = sl_req_header_nth(req, "Accept-Encoding", i);

            if (i > 0)
                p[v.len++] = ',';
            memcpy(p + v.len, l.p, l.len);
            v.len += l.len;
        }
    }
    if (v.p == NULL)
        return CZ_IDENTITY;
    sl__cz_accept_parse(v, &a);
    return sl__cz_accept_choose(&a, c->order, c->n_order);
}

/* Compressing from here on: the headers that describe the new body. Any
 * that cannot be set (the request arena is full) make the filter pass the
 * body through unchanged instead. Returns 0 or -1. */
static int describe(struct sl_req *req, enum cz_coding coding)
{
    struct sl_str etag = sl_resp_header(req, "ETag");

    /* The compressed bytes are not the upstream's: a strong validator
     * would promise byte equality (and ranges by it). */
    if (etag.len >= 2 && etag.p[0] == '"') {
        char *weak = sl_arena_printf(sl_req_arena(req), "W/%.*s", (int)etag.len, etag.p);

        if (weak == NULL || sl_resp_header_set(req, "ETag", weak) != 0)
            return -1;
    }
    if (sl_resp_header_set(req, "Content-Encoding", sl__cz_coding_name(coding)) != 0)
        return -1;
    /* A digest of the identity body, and ranges of it, no longer apply. */
    sl_resp_header_remove(req, "Content-MD5");
    sl_resp_header_remove(req, "Accept-Ranges");
    return 0;
}

static void on_response(struct sl_req *req, void *conf)
{
    const struct cz_conf *c = conf;
    int64_t size = -1;
    const char *why = unfit(req, c, &size);
    enum cz_coding coding = CZ_IDENTITY;
    struct cz_body *b;

    if (why == NULL) {
        if (!resp_lists(req, "Vary", "accept-encoding") && !resp_lists(req, "Vary", "*"))
            sl_resp_header_add(req, "Vary", "Accept-Encoding");
        if (sl_str_caseeq_lit(sl_req_method(req), "HEAD"))
            why = "head";
        else if ((coding = negotiate(req, c)) == CZ_IDENTITY)
            why = "not_accepted";
    }
    if (why != NULL) {
        sl_req_count(req, &responses, "skipped");
        sl_req_log_field(req, "compress", why);
        return;
    }
    b = sl_malloc(sizeof(*b), "the compress plugin's body state");
    b->s = sl__cz_stream_new(coding, c->level[coding], size > 0 ? (uint64_t)size : 0);
    if (sl_resp_body_filter(req, &filter, b) != 0) {
        on_done(b); /* not taken: done() will not run */
        sl_req_count(req, &responses, "skipped");
        sl_req_log_field(req, "compress", "unfilterable");
        return;
    }
    if (describe(req, coding) != 0) {
        sl__cz_stream_free(b->s);
        b->s = NULL;
        sl_req_count(req, &responses, "skipped");
        sl_req_log_field(req, "compress", "arena_full");
        return;
    }
    sl_req_count(req, &responses, sl__cz_coding_name(coding));
    sl_req_log_field(req, "compress", sl__cz_coding_name(coding));
}

static void *worker_init(uv_loop_t *loop)
{
    (void)loop;
    return sl_malloc(sizeof(struct cz_worker), "the compress plugin's buffer");
}

static void worker_fini(void *wdata)
{
    free(wdata);
}

static const struct sl_counter *const counters[] = {&responses, NULL};

static unsigned id;

const struct sl_plugin sl_plugin_compress = {
    .abi = SL_PLUGIN_ABI,
    .name = "compress",
    .id = &id,
    .conf_parse = sl__compress_conf_parse,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .response = on_response,
    .counters = counters,
    .versions = sl__cz_versions,
};
