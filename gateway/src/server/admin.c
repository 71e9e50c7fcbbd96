/*
 * The admin API. It serves a handful of small requests from operators and
 * scrapers, so it stays simple: one request per connection, answered and
 * closed, on the main thread (which otherwise only waits for signals).
 *
 * A request is judged when its head ends: a client without the token, a
 * body to an endpoint that takes none, or one over MAX_BODY is answered
 * then, and what it still sends is read (a little, briefly, so that the
 * answer is not lost to a reset) and dropped. A connection that sends
 * nothing for IDLE_MS is closed; at most MAX_CONNS are open at a time.
 */
#include "server/admin.h"

#include <llhttp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config/config.h"
#include "config/gen.h"
#include "base/log.h"
#include "http/metrics.h"
#include "base/sbuf.h"
#include "upstream/target_state.h"
#include "base/util.h"
#include "server/admin_data.h"
#include "server/admin_query.h"
#include "server/dashboard.h"
#include "server/dry_run.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define MAX_HEAD 8192
/* The largest request body (a config sent to POST /reload?dry_run=1). */
#define MAX_BODY  (16u << 20)
#define IDLE_MS   10000 /* without a byte from the client (or sent to it) */
#define MAX_CONNS 64
/* After an early answer: what a client may still send, and for how long,
 * before the connection is closed anyway. */
#define LINGER_MS    2000
#define LINGER_BYTES (1u << 20)

struct admin_conn;
typedef void admin_fn(struct admin_conn *);

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* IDLE_MS, then LINGER_MS */
    int open_handles; /* freed when both are closed */
    uv_shutdown_t shut;
    llhttp_t parser;
    admin_fn *fn;  /* what answers it, chosen when its head ended */
    bool early;    /* answered before its end: linger */
    bool draining; /* answered early and written: what comes is dropped */
    size_t drained;
    char head[MAX_HEAD]; /* URL and the Authorization value, copied */
    size_t url_len;
    char auth[512];
    size_t auth_len;
    bool in_auth, answered;
    char field[32];
    size_t field_len;
    /* X-Config-File: the name a config sent in the body is reported under. */
    char file[1024];
    size_t file_len;
    bool in_file;
    char *body; /* heap, NULL: none */
    size_t body_len, body_cap;
    bool body_too_large;
    struct sl_query query;
    uv_write_t wr;
    struct sl_sbuf out;
    struct admin_conn *next, *prev;
};

static struct {
    uv_loop_t *loop;
    uv_tcp_t *listener;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *token; /* NULL: no authentication */
    sl_admin_reload_fn *reload;
    uint32_t workers;
    time_t started;
    struct admin_conn *conns;
    size_t n_conns;
    bool full_logged; /* the MAX_CONNS warning, once until below it again */
} admin;

static llhttp_settings_t settings;

/* -- answering --------------------------------------------------------------- */

static void conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;

    if (--c->open_handles > 0)
        return;
    sl__sbuf_free(&c->out);
    free(c->body);
    free(c);
}

static void conn_close(struct admin_conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        admin.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    admin.n_conns--;
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* IDLE_MS without a byte, or the LINGER_MS after an early answer, ran out. */
static void timed_out(uv_timer_t *t)
{
    conn_close(t->data);
}

static void shut(uv_shutdown_t *s, int status)
{
    if (status < 0)
        conn_close(s->data);
}

/* The answer is out. A request answered before its end (its body unread)
 * has the rest of what it sends read and dropped for a while, then
 * closed: closing with unread bytes would reset the connection, and the
 * client, still sending, could lose the answer to the reset. */
static void written(uv_write_t *w, int status)
{
    struct admin_conn *c = w->data;

    if (status < 0 || !c->early) {
        conn_close(c);
        return;
    }
    c->draining = true;
    uv_timer_start(&c->timer, timed_out, LINGER_MS, 0);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, shut) != 0)
        conn_close(c);
}

static void respond(struct admin_conn *c, int status, const char *type, const char *body,
                    size_t len)
{
    static const char *const reasons[] = {
        [200] = "OK",        [400] = "Bad Request",        [401] = "Unauthorized",
        [404] = "Not Found", [405] = "Method Not Allowed", [413] = "Payload Too Large"};
    struct sl_sbuf head = {0};
    uv_buf_t buf;

    c->answered = true;
    sl__sbuf_printf(&head,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                    status, status < 414 && reasons[status] ? reasons[status] : "Error", type, len,
                    status == 401 ? "WWW-Authenticate: Bearer realm=\"sluice admin\"\r\n" : "");
    if (c->parser.method != HTTP_HEAD)  /* HEAD: the length, no body */
        sl__sbuf_add(&head, body, len); /* one buffer: the connection owns it */
    c->out = head;
    buf = uv_buf_init(c->out.p, (unsigned)c->out.len);
    c->wr.data = c;
    uv_timer_start(&c->timer, timed_out, IDLE_MS, 0); /* now a deadline for the answer */
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, written) != 0)
        conn_close(c);
}

static void respond_error(struct admin_conn *c, int status, const char *code, const char *msg)
{
    struct sl_sbuf b = {0};

    sl__sbuf_lit(&b, "{\"error\": ");
    sl__sbuf_json(&b, sl_str_from(code));
    sl__sbuf_lit(&b, ", \"message\": ");
    sl__sbuf_json(&b, sl_str_from(msg));
    sl__sbuf_lit(&b, "}\n");
    respond(c, status, "application/json", b.p, b.len);
    sl__sbuf_free(&b);
}

static void iso_time(time_t t, char *buf, size_t size)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void get_status(struct admin_conn *c)
{
    struct sl_gen *g = sl__gen_acquire_current();
    struct sl_sbuf b = {0};
    char when[32];

    iso_time(g->loaded_at, when, sizeof(when));
    sl__sbuf_printf(&b,
                    "{\"version\": \"%s\", \"uptime_s\": %lld, \"workers\": %u, "
                    "\"generation\": %llu, \"config_file\": ",
                    SL_VERSION, (long long)(time(NULL) - admin.started), admin.workers,
                    (unsigned long long)g->id);
    sl__sbuf_json(&b, sl_str_from(g->file));
    sl__sbuf_printf(&b, ", \"loaded_at\": \"%s\", \"last_reload\": ", when);
    sl__admin_reload_json(&b);
    sl__sbuf_lit(&b, "}\n");
    sl__gen_unref(g);
    respond(c, 200, "application/json", b.p, b.len);
    sl__sbuf_free(&b);
}

static void get_metrics(struct admin_conn *c)
{
    struct sl_sbuf b = {0};

    sl__metrics_render(&b);
    respond(c, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.len);
    sl__sbuf_free(&b);
}

/* A monotonic deadline as wall-clock ISO 8601, or null. */
static void json_until(struct sl_sbuf *b, uint64_t until_ms)
{
    uint64_t now = sl__mono_ns() / 1000000;
    char when[32];

    if (until_ms == 0 || until_ms <= now) {
        sl__sbuf_lit(b, "null");
        return;
    }
    iso_time(time(NULL) + (time_t)((until_ms - now + 999) / 1000), when, sizeof(when));
    sl__sbuf_printf(b, "\"%s\"", when);
}

static void get_upstreams(struct admin_conn *c)
{
    struct sl_gen *g = sl__gen_acquire_current();
    struct sl_sbuf b = {0};

    sl__sbuf_lit(&b, "{\"generation\": ");
    sl__sbuf_printf(&b, "%llu, \"upstreams\": [", (unsigned long long)g->id);
    for (size_t i = 0; i < g->conf->n_upstreams; i++) {
        const struct sl_upstream *u = &g->upstreams[i];
        static const char *const balances[] = {"round_robin", "least_conn", "hash", "p2c"};

        sl__sbuf_lit(&b, i ? ", {\"name\": " : "{\"name\": ");
        sl__sbuf_json(&b, sl_str_from(u->conf->name));
        sl__sbuf_printf(&b, ", \"balance\": \"%s\", \"health_check\": %s, \"targets\": [",
                        balances[u->conf->balance], u->conf->health.enabled ? "true" : "false");
        for (size_t k = 0; k < u->n_targets; k++) {
            const struct sl_target *t = &u->targets[k];
            struct sl_tstate *st = t->st;
            uint64_t until = atomic_load(&st->ejected_until), ok = 0, err5 = 0;

            for (size_t s = 0; s < SL_TSTATE_CODES; s++) {
                uint64_t v = atomic_load_explicit(&st->codes[s], memory_order_relaxed);

                ok += v;
                if (s >= 400)
                    err5 += v;
            }
            sl__sbuf_lit(&b, k ? ", {\"address\": " : "{\"address\": ");
            sl__sbuf_json(&b, sl_str_from(t->conf->ip));
            sl__sbuf_lit(&b, ", \"name\": ");
            sl__sbuf_json(&b, sl_str_from(t->conf->address));
            sl__sbuf_printf(&b,
                            ", \"weight\": %u, \"backup\": %s, \"healthy\": %s, \"active\": %u, "
                            "\"ejected_until\": ",
                            t->conf->weight, t->conf->backup ? "true" : "false",
                            atomic_load(&st->healthy) ? "true" : "false",
                            atomic_load(&st->inflight));
            json_until(&b, until);
            sl__sbuf_printf(&b,
                            ", \"requests\": %llu, \"responses\": %llu, \"responses_5xx\": %llu, "
                            "\"no_response\": %llu, \"failures\": %llu, \"ejections\": %llu, "
                            "\"consecutive_failures\": %u, \"latency_ms\": %.3f, \"last_check\": ",
                            (unsigned long long)atomic_load(&st->requests), (unsigned long long)ok,
                            (unsigned long long)err5,
                            (unsigned long long)atomic_load(&st->no_response),
                            (unsigned long long)atomic_load(&st->failures),
                            (unsigned long long)atomic_load(&st->ejections),
                            atomic_load(&st->fails), atomic_load(&st->ewma_us) / 1000.0);
            sl__sbuf_json(&b, st->last_check[0] ? sl_str_from(st->last_check) : SL_STR_NULL);
            sl__sbuf_lit(&b, "}");
        }
        sl__sbuf_lit(&b, "]}");
    }
    sl__sbuf_lit(&b, "]}\n");
    sl__gen_unref(g);
    respond(c, 200, "application/json", b.p, b.len);
    sl__sbuf_free(&b);
}

/* POST /reload?dry_run=1: what a reload of the instance's file (or of the
 * config in the body) would change, applying nothing (dry_run.c). */
static void dry_run(struct admin_conn *c, const char *value)
{
    struct sl_sbuf b = {0};
    int status;

    if (strcmp(value, "1") != 0 && strcmp(value, "true") != 0) {
        struct sl_sbuf m = {0};

        sl__sbuf_printf(&m, "dry_run takes 1 or true, found \"%.64s\"", value);
        sl__sbuf_lit(&b, "{\"error\": \"invalid_parameter\", \"message\": ");
        sl__sbuf_json(&b, (struct sl_str){m.p, m.len});
        sl__sbuf_lit(&b, ", \"parameter\": \"dry_run\", \"values\": [\"1\", \"true\"]}\n");
        respond(c, 400, "application/json", b.p, b.len);
        sl__sbuf_free(&m);
        sl__sbuf_free(&b);
        return;
    }
    if (c->body_too_large) {
        respond_error(c, 413, "payload_too_large",
                      "a configuration sent for a dry run is 16m at most");
        return;
    }
    c->file[c->file_len] = '\0';
    status = sl__dry_run(c->body_len ? c->body : NULL, c->body_len, c->file_len ? c->file : NULL,
                         admin.workers, &b);
    respond(c, status, "application/json", b.p, b.len);
    sl__sbuf_free(&b);
}

static void post_reload(struct admin_conn *c)
{
    uint64_t gen = 0;
    char *report = NULL;
    struct sl_sbuf b = {0};

    if (sl__query_get(&c->query, "dry_run") != NULL) {
        dry_run(c, sl__query_get(&c->query, "dry_run"));
        return;
    }
    if (c->body_len != 0 || c->body_too_large) {
        respond_error(c, 400, "unexpected_body",
                      "POST /reload re-reads the instance's own file and takes no body; to "
                      "compare the configuration in the body, use POST /reload?dry_run=1");
        return;
    }
    if (admin.reload(&gen, &report) == 0) {
        sl__sbuf_printf(&b, "{\"result\": \"ok\", \"generation\": %llu}\n",
                        (unsigned long long)gen);
        respond(c, 200, "application/json", b.p, b.len);
    } else {
        sl__sbuf_lit(&b, "{\"error\": \"invalid_config\", \"message\": ");
        sl__sbuf_json(&b, sl_str_from(report ? report : "the configuration could not be loaded"));
        sl__sbuf_lit(&b, "}\n");
        respond(c, 400, "application/json", b.p, b.len);
    }
    free(report);
    sl__sbuf_free(&b);
}

static void get_routes(struct admin_conn *c)
{
    struct sl_sbuf b = {0};

    sl__admin_routes_json(&b);
    respond(c, 200, "application/json", b.p, b.len);
    sl__sbuf_free(&b);
}

/* GET / : the dashboard page, which dashboard.c writes whole (its own
 * headers: the CSP, no-cache). */
static void get_dashboard(struct admin_conn *c, int method)
{
    uv_buf_t buf;

    if (method != HTTP_GET && method != HTTP_HEAD) {
        respond_error(c, 405, "method_not_allowed", "the dashboard answers GET and HEAD");
        return;
    }
    c->answered = true;
    sl__dashboard_response(&c->out, method == HTTP_HEAD, admin.token != NULL);
    buf = uv_buf_init(c->out.p, (unsigned)c->out.len);
    c->wr.data = c;
    uv_timer_start(&c->timer, timed_out, IDLE_MS, 0);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, written) != 0)
        conn_close(c);
}

static void dashboard(struct admin_conn *c)
{
    get_dashboard(c, c->parser.method);
}

static bool authorized(struct admin_conn *c)
{
    size_t n;

    if (admin.token == NULL)
        return true;
    n = strlen(admin.token);
    /* "Bearer <token>", compared in constant time. */
    return c->auth_len == 7 + n && strncasecmp(c->auth, "Bearer ", 7) == 0 &&
           CRYPTO_memcmp(c->auth + 7, admin.token, n) == 0;
}

/*
 * Check the request's query string against the parameters its endpoint
 * accepts (NULL-terminated; NULL: none), keeping them in c->query. An
 * unknown parameter, or one given twice, is answered with 400 naming it
 * and the accepted ones: an endpoint never acts on a request it only
 * partly understood. Returns 0, or -1 when it answered.
 */
static int read_query(struct admin_conn *c, const char *endpoint, const char *const *accepted)
{
    const char *q = memchr(c->head, '?', c->url_len);
    size_t len = q ? c->url_len - (size_t)(q + 1 - c->head) : 0;
    enum sl_query_result r = sl__query_parse(&c->query, q ? q + 1 : "", len, accepted);
    struct sl_sbuf b = {0}, m = {0}, names = {0};

    if (r == SL_QUERY_OK)
        return 0;
    for (size_t i = 0; accepted != NULL && accepted[i] != NULL; i++)
        sl__sbuf_printf(&names, "%s%s", i ? ", " : "", accepted[i]);
    if (r == SL_QUERY_TWICE)
        sl__sbuf_printf(&m, "query parameter \"%.64s\" is given more than once", c->query.bad);
    else if (r == SL_QUERY_CONTROL)
        sl__sbuf_printf(&m,
                        "query parameter \"%.64s\" decodes to a control character (%%00 to "
                        "%%1F, %%7F)",
                        c->query.bad);
    else
        sl__sbuf_printf(&m, "unknown query parameter \"%.64s\" for %s (it accepts %s)",
                        c->query.bad, endpoint, names.len ? names.p : "none");
    sl__sbuf_lit(&b, r == SL_QUERY_UNKNOWN ? "{\"error\": \"unknown_parameter\", \"message\": "
                                           : "{\"error\": \"invalid_parameter\", \"message\": ");
    sl__sbuf_json(&b, (struct sl_str){m.p, m.len});
    sl__sbuf_lit(&b, ", \"parameter\": ");
    sl__sbuf_json(&b, sl_str_from(c->query.bad));
    sl__sbuf_lit(&b, ", \"accepted\": [");
    for (size_t i = 0; accepted != NULL && accepted[i] != NULL; i++) {
        sl__sbuf_lit(&b, i ? ", " : "");
        sl__sbuf_json(&b, sl_str_from(accepted[i]));
    }
    sl__sbuf_lit(&b, "]}\n");
    respond(c, 400, "application/json", b.p, b.len);
    sl__sbuf_free(&b);
    sl__sbuf_free(&m);
    sl__sbuf_free(&names);
    return -1;
}

/*
 * Which endpoint answers c, whose head is complete: its handler, or NULL
 * when c was answered here (the dashboard's query, 401, 404, 405, a bad
 * query string).
 */
static admin_fn *choose(struct admin_conn *c)
{
    static const char *const reload_params[] = {"dry_run", NULL};
    int m = c->parser.method;
    char *q = memchr(c->head, '?', c->url_len);
    size_t len = q ? (size_t)(q - c->head) : c->url_len;
    /* Each endpoint with the query parameters it accepts (NULL: none). */
    struct {
        const char *path;
        int method;
        void (*fn)(struct admin_conn *);
        const char *const *params;
    } routes[] = {{"/status", HTTP_GET, get_status, NULL},
                  {"/metrics", HTTP_GET, get_metrics, NULL},
                  {"/upstreams", HTTP_GET, get_upstreams, NULL},
                  {"/routes", HTTP_GET, get_routes, NULL},
                  {"/reload", HTTP_POST, post_reload, reload_params}};
    char endpoint[32];

    if (sl__dashboard_is_page(c->head, len)) {
        /* the page holds no data: no token needed; no query parameter either */
        if ((m != HTTP_GET && m != HTTP_HEAD) || read_query(c, "GET /", NULL) == 0)
            return dashboard;
        return NULL;
    }
    if (!authorized(c)) {
        respond_error(c, 401, "unauthorized", "a valid bearer token is required");
        return NULL;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(routes); i++) {
        if (strlen(routes[i].path) != len || memcmp(routes[i].path, c->head, len) != 0)
            continue;
        snprintf(endpoint, sizeof(endpoint), "%s %s", routes[i].method == HTTP_GET ? "GET" : "POST",
                 routes[i].path);
        if (m != routes[i].method && !(m == HTTP_HEAD && routes[i].method == HTTP_GET))
            respond_error(c, 405, "method_not_allowed", "wrong method for this endpoint");
        else if (read_query(c, endpoint, routes[i].params) == 0)
            return routes[i].fn;
        return NULL;
    }
    respond_error(c, 404, "not_found",
                  "endpoints: / (the dashboard), /status, /routes, /metrics, /upstreams, "
                  "POST /reload");
    return NULL;
}

/* -- parsing ------------------------------------------------------------------ */

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;

    if (c->url_len + len > sizeof(c->head))
        return -1;
    memcpy(c->head + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_field(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;

    if (c->in_auth || c->in_file || c->field_len == sizeof(c->field)) {
        c->field_len = 0;
        c->in_auth = c->in_file = false;
    }
    if (c->field_len + len <= sizeof(c->field)) {
        memcpy(c->field + c->field_len, at, len);
        c->field_len += len;
    } else {
        c->field_len = sizeof(c->field); /* too long to be Authorization */
    }
    return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;

    if (!c->in_auth && c->field_len == 13 && strncasecmp(c->field, "Authorization", 13) == 0) {
        c->in_auth = true;
        c->auth_len = 0;
    }
    if (!c->in_file && c->field_len == 13 && strncasecmp(c->field, "X-Config-File", 13) == 0) {
        c->in_file = true;
        c->file_len = 0;
    }
    if (c->in_auth) {
        if (c->auth_len + len > sizeof(c->auth))
            return -1;
        memcpy(c->auth + c->auth_len, at, len);
        c->auth_len += len;
    } else if (c->in_file) {
        if (c->file_len + len >= sizeof(c->file))
            return -1;
        memcpy(c->file + c->file_len, at, len);
        c->file_len += len;
    } else {
        c->field_len = sizeof(c->field); /* the next field starts afresh */
    }
    return 0;
}

/* The head is complete: the request is judged now, before any body is
 * read. Only a dry run takes one (up to MAX_BODY); a client without the
 * token, a body anywhere else, or a larger one is answered at once
 * (returns HPE_PAUSED: nothing more is parsed). */
static int on_headers_complete(llhttp_t *p)
{
    struct admin_conn *c = p->data;
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);

    c->fn = choose(c);
    if (c->fn != NULL && has_body &&
        (c->fn != post_reload || sl__query_get(&c->query, "dry_run") == NULL))
        respond_error(c, 400, "unexpected_body",
                      c->fn == post_reload
                          ? "POST /reload re-reads the instance's own file and takes no body; to "
                            "compare the configuration in the body, use POST /reload?dry_run=1"
                          : "this endpoint takes no request body");
    else if (c->fn != NULL && (p->flags & F_CONTENT_LENGTH) && p->content_length > MAX_BODY)
        respond_error(c, 413, "payload_too_large",
                      "a configuration sent for a dry run is 16m at most");
    if (!c->answered)
        return 0;
    c->early = has_body;
    return HPE_PAUSED;
}

/* A request body (a config for a dry run), kept up to MAX_BODY; a chunked
 * one that grows past it is answered 413 at once. */
static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;

    if (c->body_len + len > MAX_BODY) {
        c->body_too_large = c->early = true;
        respond_error(c, 413, "payload_too_large",
                      "a configuration sent for a dry run is 16m at most");
        return -1;
    }
    if (c->body_len + len > c->body_cap) {
        c->body_cap = c->body_len + len > 2 * c->body_cap ? c->body_len + len : 2 * c->body_cap;
        c->body = sl__xrealloc(c->body, c->body_cap);
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_complete(llhttp_t *p)
{
    struct admin_conn *c = p->data;

    if (!c->answered && c->fn != NULL)
        c->fn(c);
    return HPE_PAUSED;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    b->base = malloc(4096);
    b->len = b->base ? 4096 : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct admin_conn *c = s->data;

    if (n > 0 && c->draining) {
        c->drained += (size_t)n;
        if (c->drained > LINGER_BYTES)
            conn_close(c);
    } else if (n > 0 && !c->answered) {
        llhttp_errno_t err;

        uv_timer_start(&c->timer, timed_out, IDLE_MS, 0);
        err = llhttp_execute(&c->parser, b->base, (size_t)n);
        if (err != HPE_OK && err != HPE_PAUSED && !c->answered) {
            c->early = true; /* more may be on its way */
            respond_error(c, 400, "bad_request", "malformed request");
        }
    } else if (n < 0) {
        c->early = false; /* nothing more will come: no need to linger */
        if (!c->answered || c->draining)
            conn_close(c);
    }
    free(b->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct admin_conn *c;

    if (status < 0)
        return;
    c = sl__xcalloc(1, sizeof(*c));
    uv_tcp_init(admin.loop, &c->tcp);
    uv_timer_init(admin.loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || admin.n_conns >= MAX_CONNS) {
        if (admin.n_conns >= MAX_CONNS && !admin.full_logged)
            sl_log(SL_LOG_WARN, NULL,
                   "admin API: %d connections open, closing new ones until one ends", MAX_CONNS);
        admin.full_logged = admin.n_conns >= MAX_CONNS;
        uv_close((uv_handle_t *)&c->timer, conn_closed);
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    admin.full_logged = false;
    c->next = admin.conns;
    if (admin.conns)
        admin.conns->prev = c;
    admin.conns = c;
    admin.n_conns++;
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    uv_timer_start(&c->timer, timed_out, IDLE_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* -- the listener -------------------------------------------------------------- */

static void listener_closed(uv_handle_t *h)
{
    free(h);
}

static void close_listener(void)
{
    if (admin.listener != NULL) {
        uv_close((uv_handle_t *)admin.listener, listener_closed);
        admin.listener = NULL;
    }
}

int sl__admin_apply(uv_loop_t *loop, const struct sl_config *c, sl_admin_reload_fn *reload,
                    uint32_t workers)
{
    int rc;

    if (admin.loop == NULL) {
        llhttp_settings_init(&settings);
        settings.on_url = on_url;
        settings.on_header_field = on_field;
        settings.on_header_value = on_value;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_complete;
        admin.started = time(NULL);
    }
    admin.loop = loop;
    admin.reload = reload;
    admin.workers = workers;
    free(admin.token);
    admin.token = c->admin_token && c->admin_token[0] ? sl__xstrdup(c->admin_token) : NULL;
    if (c->admin_address == NULL) {
        close_listener();
        return 0;
    }
    if (admin.listener != NULL && admin.addrlen == c->admin_addrlen &&
        memcmp(&admin.addr, &c->admin_addr, admin.addrlen) == 0)
        return 0; /* same address: keep it */
    close_listener();
    admin.listener = sl__xcalloc(1, sizeof(*admin.listener));
    uv_tcp_init(loop, admin.listener);
    rc = uv_tcp_bind(admin.listener, (const struct sockaddr *)&c->admin_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)admin.listener, 64, on_connection);
    if (rc != 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot listen on admin.address %s: %s", c->admin_address,
               uv_strerror(rc));
        close_listener();
        return rc;
    }
    admin.addr = c->admin_addr;
    admin.addrlen = c->admin_addrlen;
    sl_log(SL_LOG_INFO, NULL, "admin API on %s%s", c->admin_address,
           admin.token ? " (bearer token required)" : "");
    return 0;
}

void sl__admin_stop(void)
{
    close_listener();
    while (admin.conns != NULL)
        conn_close(admin.conns);
    free(admin.token);
    admin.token = NULL;
}
