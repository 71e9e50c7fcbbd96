/*
 * Requests: lifetime, the plugin-facing API of sluice/req.h, and the phase
 * runner.
 */
#include "http/req.h"

#include <arpa/inet.h>
#include <string.h>

#include "config/config.h"
#include "http/body_filter.h"
#include "http/conn.h"
#include "http/h1.h"
#include "config/gen.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "http/metrics.h"
#include "config/plugins.h"
#include "config/router.h"
#include "http/proxy.h"
#include "http/respond.h"
#include "base/util.h"
#include "core/worker.h"

/* A request's arena: enough for a large head's bookkeeping and plugin data. */
#define REQ_ARENA_CHUNK 4096
#define REQ_ARENA_CAP   (1024 * 1024)

void sl__req_init(struct sl_req *req, struct sl_conn *c)
{
    struct sl_head head = req->head; /* the head buffer is kept across requests */
    struct sl_arena arena = req->arena;
    bool had_arena = req->arena.chunk_size != 0;

    memset(req, 0, sizeof(*req));
    req->conn = c;
    req->down = &sl__h1_downstream;
    if (had_arena) {
        req->arena = arena;
        sl_arena_reset(&req->arena);
    } else {
        sl_arena_init(&req->arena, REQ_ARENA_CHUNK, REQ_ARENA_CAP);
    }
    req->head = head;
    sl__head_reset(&req->head);
    req->wg = sl__worker_gen_acquire(c->w);
    req->gen = req->wg->gen;
    req->head.max = (uint32_t)req->gen->conf->max_header_bytes;
    req->start_ns = sl__mono_ns();
    sl__metrics_active(c->w->metrics, 1);
    req->bytes_out_start = c->out.bytes;
    req->keepalive = true;
}

void sl__req_release(struct sl_req *req)
{
    if (req->wg != NULL) {
        sl__metrics_active(req->conn->w->metrics, -1);
        sl__worker_gen_release(req->conn->w, req->wg);
        req->wg = NULL;
    }
    req->gen = NULL;
    sl__body_filters_release(req);
    sl_arena_reset(&req->arena);
    req->head.fields = NULL;
    req->head.n = req->head.cap = 0;
}

size_t sl__req_log_context(struct sl_req *req, char *buf, size_t size)
{
    struct sl_str m = req->method_s, p = req->path;
    const char *action = req->action;
    int r = snprintf(buf, size, "%s%s, client: %s, request: \"%.*s %.*s\", id: %s",
                     action ? ", while " : "", action ? action : "", sl__req_ip(req), (int)m.len,
                     m.p ? m.p : "", (int)SL_MIN(p.len, 512), p.p ? p.p : "",
                     req->id[0] ? req->id : "-");

    return r > 0 ? (size_t)r : 0;
}

void sl__req_log_context_json(struct sl_req *req, struct sl_sbuf *b)
{
    struct sl_str p = req->path;

    if (req->action != NULL) {
        sl__sbuf_lit(b, ",\"action\":");
        sl__sbuf_json(b, sl_str_from(req->action));
    }
    sl__sbuf_lit(b, ",\"client\":");
    sl__sbuf_json(b, sl_str_from(sl__req_ip(req)));
    sl__sbuf_lit(b, ",\"method\":");
    sl__sbuf_json(b, req->method_s.p ? req->method_s : SL_STR(""));
    sl__sbuf_lit(b, ",\"path\":");
    sl__sbuf_json(b, p.p ? (struct sl_str){p.p, SL_MIN(p.len, 512)} : SL_STR(""));
    sl__sbuf_lit(b, ",\"request_id\":");
    sl__sbuf_json(b, req->id[0] ? sl_str_from(req->id) : SL_STR_NULL);
}

/* -- the public API (sluice/req.h) ---------------------------------------- */

struct sl_str sl_req_method(const struct sl_req *req)
{
    return req->method_s;
}

struct sl_str sl_req_path(const struct sl_req *req)
{
    return req->path.p ? req->path : req->uri;
}

/* The next parameter of q from *i on: its name, and its value (or {p, 0}
 * for a bare name). False at the end. */
static bool next_param(struct sl_str q, size_t *i, struct sl_str *name, struct sl_str *value,
                       size_t *start, size_t *end)
{
    while (*i < q.len && q.p[*i] == '&')
        (*i)++;
    if (*i >= q.len)
        return false;
    *start = *i;
    while (*i < q.len && q.p[*i] != '&')
        (*i)++;
    *end = *i;
    {
        const char *eq = memchr(q.p + *start, '=', *end - *start);
        size_t nlen = eq ? (size_t)(eq - (q.p + *start)) : *end - *start;

        *name = (struct sl_str){q.p + *start, nlen};
        *value = eq ? (struct sl_str){eq + 1, (size_t)(q.p + *end - eq - 1)}
                    : (struct sl_str){q.p + *end, 0};
    }
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The byte of form-encoded raw at *i, decoded ('%XX', '+' for a space,
 * as application/x-www-form-urlencoded says); *i moves past it. */
static int form_byte(struct sl_str raw, size_t *i)
{
    int c = (unsigned char)raw.p[*i];

    if (c == '%' && *i + 2 < raw.len && hexval(raw.p[*i + 1]) >= 0 && hexval(raw.p[*i + 2]) >= 0) {
        c = hexval(raw.p[*i + 1]) * 16 + hexval(raw.p[*i + 2]);
        *i += 3;
        return c;
    }
    (*i)++;
    return c == '+' ? ' ' : c;
}

/* Whether a parameter name as sent is want once decoded: access%5Ftoken is
 * access_token to every framework behind us. */
static bool param_is(struct sl_str raw, struct sl_str want)
{
    size_t i = 0, j = 0;

    while (i < raw.len && j < want.len)
        if (form_byte(raw, &i) != (unsigned char)want.p[j++])
            return false;
    return i == raw.len && j == want.len;
}

/* raw decoded: raw itself when it holds nothing to decode, else a copy in
 * the request arena ({NULL, 0} when that is full). */
static struct sl_str form_decode(struct sl_req *req, struct sl_str raw)
{
    size_t i = 0, n = 0;
    char *out;

    if (memchr(raw.p, '%', raw.len) == NULL && memchr(raw.p, '+', raw.len) == NULL)
        return raw;
    out = sl_arena_alloc(&req->arena, raw.len + 1);
    if (out == NULL)
        return SL_STR_NULL;
    while (i < raw.len)
        out[n++] = (char)form_byte(raw, &i);
    out[n] = '\0';
    return (struct sl_str){out, n};
}

struct sl_str sl_req_query_param(struct sl_req *req, const char *name)
{
    struct sl_str n, v, want = sl_str_from(name);
    size_t i = 0, start, end;

    while (next_param(req->query, &i, &n, &v, &start, &end))
        if (param_is(n, want))
            return v.len == 0 ? v : form_decode(req, v);
    return SL_STR_NULL;
}

int sl_req_query_param_remove(struct sl_req *req, const char *name)
{
    struct sl_str q = req->query, n, v, want = sl_str_from(name);
    size_t i = 0, start, end, len = 0;
    char *out = sl_arena_alloc(&req->arena, q.len + 1);
    int removed = 0;

    if (out == NULL)
        return -1;
    while (next_param(q, &i, &n, &v, &start, &end)) {
        if (param_is(n, want)) {
            removed++;
            continue;
        }
        if (len > 0)
            out[len++] = '&';
        memcpy(out + len, q.p + start, end - start);
        len += end - start;
    }
    if (removed > 0) {
        req->query = (struct sl_str){out, len};
        req->query_rewritten = true;
    }
    return removed;
}

struct sl_str sl_req_query(const struct sl_req *req)
{
    return req->query;
}

struct sl_str sl_req_host(const struct sl_req *req)
{
    return req->host;
}

bool sl_req_is_tls(const struct sl_req *req)
{
    return req->conn->tls;
}

struct sl_str sl_req_header_nth(const struct sl_req *req, const char *name, unsigned nth)
{
    uint32_t to = req->head.in_trailers ? req->head.trailers_from : req->head.n;
    size_t len = strlen(name);

    for (uint32_t i = 0; i < to; i++) {
        const struct sl_header *h = &req->head.fields[i];

        /* A header replaced by a plugin lost its name (see below); the new
         * value follows later in the list. */
        if (h->name.len == len && strncasecmp(h->name.p, name, len) == 0 && nth-- == 0)
            return h->value;
    }
    return SL_STR_NULL;
}

struct sl_str sl_req_header(const struct sl_req *req, const char *name)
{
    return sl_req_header_nth(req, name, 0);
}

unsigned sl_req_header_count(const struct sl_req *req, const char *name)
{
    uint32_t to = req->head.in_trailers ? req->head.trailers_from : req->head.n;
    size_t len = strlen(name);
    unsigned n = 0;

    for (uint32_t i = 0; i < to; i++) {
        const struct sl_header *h = &req->head.fields[i];

        if (h->name.len == len && strncasecmp(h->name.p, name, len) == 0)
            n++;
    }
    return n;
}

/* The value of a cookie in a Cookie header ("a=1; b=2"), or {NULL, 0}. */
static struct sl_str cookie_value(struct sl_str hdr, const char *name)
{
    size_t nlen = strlen(name), i = 0;

    while (i < hdr.len) {
        size_t start, eq, end;

        while (i < hdr.len && (hdr.p[i] == ' ' || hdr.p[i] == ';'))
            i++;
        start = i;
        while (i < hdr.len && hdr.p[i] != ';')
            i++;
        end = i;
        for (eq = start; eq < end && hdr.p[eq] != '='; eq++)
            ;
        if (eq < end && eq - start == nlen && memcmp(hdr.p + start, name, nlen) == 0)
            return (struct sl_str){hdr.p + eq + 1, end - eq - 1};
    }
    return SL_STR_NULL;
}

struct sl_str sl_req_key(struct sl_req *req, const struct sl_key *k)
{
    struct sl_str v;

    switch (k->source) {
    case SL_KEY_IP:
        return sl_str_from(sl_req_real_ip(req));
    case SL_KEY_ROUTE:
        return req->route != NULL ? sl_str_from(req->route->name) : SL_STR_NULL;
    case SL_KEY_HEADER:
        return sl_req_header(req, k->name);
    case SL_KEY_COOKIE:
        v = sl_req_header(req, "Cookie");
        return v.p != NULL ? cookie_value(v, k->name) : v;
    case SL_KEY_JWT:
        return sl_req_var(req, k->text); /* "jwt:sub" */
    case SL_KEY_VAR:
        return sl_req_var(req, k->name); /* "consumer", "var:NAME" */
    }
    return SL_STR_NULL;
}

/* One more line of the request head going upstream. */
static int append_field(struct sl_req *req, const char *name, const char *value)
{
    struct sl_header *f = sl__head_new_field(&req->head, &req->arena);

    if (f == NULL)
        return -1;
    *f = (struct sl_header){SL_STR(""), SL_STR(""), true}; /* nothing, until both are copied */
    f->name.p = sl_arena_strndup(&req->arena, name, strlen(name));
    f->value.p = sl_arena_strndup(&req->arena, value, strlen(value));
    if (f->name.p == NULL || f->value.p == NULL) {
        *f = (struct sl_header){SL_STR(""), SL_STR(""), true};
        return -1;
    }
    f->name.len = strlen(name);
    f->value.len = strlen(value);
    f->drop = false;
    return 0;
}

int sl_req_header_set(struct sl_req *req, const char *name, const char *value)
{
    struct sl_head *h = &req->head;
    size_t len = strlen(name);

    for (uint32_t i = 0; i < h->n; i++) {
        struct sl_header *f = &h->fields[i];

        /* Its underscore twins too (X_User_Id for X-User-Id): a backend that
         * folds '_' and '-' alike must see only the plugin's value. */
        if (sl__header_fold_eq(f->name, (struct sl_str){name, len})) {
            /* Hide it from sl_req_header() too: empty its name. */
            f->drop = true;
            f->name.len = 0;
            f->name.p = "";
        }
    }
    return value == NULL ? 0 : append_field(req, name, value);
}

int sl_req_header_add(struct sl_req *req, const char *name, const char *value)
{
    return append_field(req, name, value);
}

const char *sl_req_client_ip(const struct sl_req *req)
{
    return sl__req_ip(req);
}

const struct sockaddr *sl_req_client_addr(const struct sl_req *req)
{
    return (const struct sockaddr *)&req->conn->peer;
}

/* A textual address to a sockaddr (port 0); false if it is not one. */
static bool parse_ip(struct sl_str s, struct sockaddr_storage *ss)
{
    char buf[64];

    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    if (s.len == 0 || s.len >= sizeof(buf))
        return false;
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return true;
    }
    return false;
}

const char *sl_req_real_ip(struct sl_req *req)
{
    const struct sl_config *c = req->gen ? req->gen->conf : NULL;
    const char *ip = sl__req_ip(req);

    if (req->real_ip != NULL)
        return req->real_ip;
    req->real_ip = ip;
    if (c == NULL || c->n_trusted == 0 ||
        !sl__cidr_match(c->trusted, c->n_trusted, (const struct sockaddr *)&req->conn->peer))
        return ip;
    /* Walk X-Forwarded-For from the right (the last hop first) past the
     * trusted proxies; several headers count as one list, in order. */
    for (uint32_t i = req->head.n; i-- > 0;) {
        struct sl_header *h = &req->head.fields[i];
        struct sl_str v = h->value;

        if (!sl_str_caseeq_lit(h->name, "X-Forwarded-For"))
            continue;
        while (v.len > 0) {
            const char *comma = v.p + v.len;
            struct sl_str item;
            struct sockaddr_storage ss;

            while (comma > v.p && comma[-1] != ',')
                comma--;
            item = (struct sl_str){comma, (size_t)(v.p + v.len - comma)};
            v.len = comma > v.p ? (size_t)(comma - 1 - v.p) : 0;
            if (!parse_ip(item, &ss))
                return req->real_ip; /* garbage: stop at the last good hop */
            sl__addr_str((struct sockaddr *)&ss, false, req->real_ip_buf, sizeof(req->real_ip_buf));
            req->real_ip = req->real_ip_buf;
            if (!sl__cidr_match(c->trusted, c->n_trusted, (struct sockaddr *)&ss))
                return req->real_ip;
        }
    }
    return req->real_ip;
}

void *sl_req_ctx(const struct sl_req *req, const struct sl_plugin *p)
{
    return req->plugin_ctx != NULL ? req->plugin_ctx[*p->id] : NULL;
}

int sl_req_set_ctx(struct sl_req *req, const struct sl_plugin *p, void *ctx)
{
    if (req->plugin_ctx == NULL) {
        req->plugin_ctx = sl_arena_calloc(&req->arena, (sl__n_plugins + 1) * sizeof(void *));
        if (req->plugin_ctx == NULL)
            return -1;
    }
    req->plugin_ctx[*p->id] = ctx;
    return 0;
}

const char *sl_req_id(const struct sl_req *req)
{
    return req->id;
}

int sl_req_set_id(struct sl_req *req, struct sl_str id)
{
    if (id.len >= sizeof(req->id))
        return -1;
    memcpy(req->id, id.p, id.len);
    req->id[id.len] = '\0';
    return 0;
}

const char *sl_req_route(const struct sl_req *req)
{
    return req->route ? req->route->name : NULL;
}

int sl__req_kv_set(struct sl_req *req, struct sl_kv **list, const char *name, struct sl_str v,
                   bool replace)
{
    struct sl_kv *kv;

    if (replace) {
        for (kv = *list; kv != NULL; kv = kv->next) {
            if (strcmp(kv->name, name) == 0) {
                char *copy = sl_arena_strndup(&req->arena, v.p, v.len);

                if (copy == NULL)
                    return -1;
                kv->value = (struct sl_str){copy, v.len};
                return 0;
            }
        }
    }
    kv = sl_arena_alloc(&req->arena, sizeof(*kv));
    if (kv == NULL)
        return -1;
    kv->name = sl_arena_strndup(&req->arena, name, strlen(name));
    kv->value.p = sl_arena_strndup(&req->arena, v.p, v.len);
    kv->value.len = v.len;
    if (kv->name == NULL || kv->value.p == NULL)
        return -1;
    /* Appended, so response headers go out in the order they were added. */
    kv->next = NULL;
    while (*list != NULL)
        list = &(*list)->next;
    *list = kv;
    return 0;
}

int sl_req_var_set(struct sl_req *req, const char *name, struct sl_str value)
{
    return sl__req_kv_set(req, &req->vars, name, value, true);
}

struct sl_str sl_req_var(const struct sl_req *req, const char *name)
{
    for (const struct sl_kv *kv = req->vars; kv != NULL; kv = kv->next)
        if (strcmp(kv->name, name) == 0)
            return kv->value;
    return SL_STR_NULL;
}

int sl_req_log_field(struct sl_req *req, const char *name, const char *value)
{
    return sl__req_kv_set(req, &req->log_fields, name, sl_str_from(value), true);
}

struct sl_arena *sl_req_arena(struct sl_req *req)
{
    return &req->arena;
}

uv_loop_t *sl_req_loop(struct sl_req *req)
{
    return &req->conn->w->loop;
}

void *sl_req_worker_data(struct sl_req *req, const struct sl_plugin *p)
{
    return req->conn->w->plugin_data[*p->id];
}

void sl_req_count(struct sl_req *req, const struct sl_counter *c, const char *value)
{
    sl__metrics_count(req->conn->w->metrics, req->route ? req->route->name : "-", c, value);
}

/* -- phases ----------------------------------------------------------------- */

int sl_req_respond(struct sl_req *req, int status, const char *code, const char *message)
{
    /* Recorded now, sent when the handler returns SL_DONE (or resumes with
     * it): answering from inside a handler would end the request under it. */
    req->pending_status = status;
    if (code == NULL) { /* no body */
        req->pending_code = req->pending_msg = NULL;
        return 0;
    }
    if (message == NULL)
        message = "";
    req->pending_code = sl_arena_strndup(&req->arena, code, strlen(code));
    req->pending_msg = sl_arena_strndup(&req->arena, message, strlen(message));
    return req->pending_code && req->pending_msg ? 0 : -1;
}

static void done_by_plugin(struct sl_req *req, const struct sl_plugin *p)
{
    if (req->pending_status == 0) {
        sl_log(SL_LOG_ERROR, req, "plugin %s returned SL_DONE without a response", p->name);
        sl__respond_error(req, 500, "internal_error", "internal error");
        return;
    }
    sl__respond_error(req, req->pending_status, req->pending_code, req->pending_msg);
}

static struct sl_str find_header(void *arg, const char *name)
{
    struct sl_req *req = arg;
    struct sl_header *h = sl__head_find(
        &req->head, name, 0, req->head.trailers_from ? req->head.trailers_from : req->head.n);

    return h ? h->value : SL_STR_NULL;
}

void sl__req_dispatch(struct sl_req *req)
{
    struct sl_route_query q = {
        .host = req->host,
        .path = req->path,
        .method = req->method,
        .header = find_header,
        .arg = req,
    };

    req->route = sl__router_match(req->gen->router, &q);
    if (req->route == NULL) {
        sl__respond_error(req, 404, "no_route", "no route matches this request");
        return;
    }
    req->upstream = sl__gen_upstream(req->gen, req->route->upstream);
    req->action = "running access plugins";
    sl__req_access(req);
}

void sl__req_access(struct sl_req *req)
{
    const struct sl_route_conf *r = req->route;

    while (req->plugin_pos < r->n_plugins) {
        const struct sl_plugin_use *use = &r->plugins[req->plugin_pos++];
        enum sl_status st;

        if (use->plugin->access == NULL)
            continue;
        req->in_handler = true;
        st = use->plugin->access(req, use->conf);
        req->in_handler = false;
        if (st == SL_AGAIN && req->resumed_inline) {
            /* The plugin resumed before it returned: take that answer. */
            req->resumed_inline = false;
            st = req->resume_status;
        }
        switch (st) {
        case SL_NEXT:
            continue;
        case SL_DONE:
            done_by_plugin(req, use->plugin);
            return;
        case SL_AGAIN:
            req->suspended = true;
            req->suspended_by = use->plugin;
            return;
        case SL_ERROR:
        default:
            sl_log(SL_LOG_ERROR, req, "plugin %s failed", use->plugin->name);
            sl__respond_error(req, 500, "internal_error", "internal error");
            return;
        }
    }
    sl__req_upstream_phase(req);
    sl__proxy_start(req);
}

void sl_req_suspend(struct sl_req *req, sl_req_cancel_fn *cancel, void *arg)
{
    req->cancel = cancel;
    req->cancel_arg = arg;
}

void sl_req_resume(struct sl_req *req, enum sl_status status)
{
    const struct sl_plugin *p = req->suspended_by;

    /* Still waiting (SL_AGAIN): the cancel callback the plugin set stays,
     * or a client leaving now would leave the plugin a dangling request. */
    if (status != SL_AGAIN) {
        req->cancel = NULL;
        req->cancel_arg = NULL;
    }
    if (req->in_handler) {
        req->resumed_inline = true;
        req->resume_status = status;
        return;
    }
    SL_BUG_ON(!req->suspended);
    req->suspended = false;
    req->suspended_by = NULL;
    switch (status) {
    case SL_NEXT:
        sl__req_access(req);
        break;
    case SL_DONE:
        done_by_plugin(req, p);
        break;
    case SL_AGAIN:
        req->suspended = true; /* still waiting */
        req->suspended_by = p;
        break;
    default:
        sl_log(SL_LOG_ERROR, req, "plugin %s failed", p ? p->name : "?");
        sl__respond_error(req, 500, "internal_error", "internal error");
        break;
    }
}

void sl__req_cancel(struct sl_req *req)
{
    sl_req_cancel_fn *fn = req->cancel;

    req->suspended = false;
    req->cancel = NULL;
    if (fn != NULL)
        fn(req->cancel_arg);
}
