/*
 * cors plugin: Cross-Origin Resource Sharing (the Fetch standard's CORS
 * protocol) decided at the gateway, one policy per route.
 *
 * ACCESS: a preflight (OPTIONS with Origin and Access-Control-Request-Method)
 * is answered here with 204 and never reaches the upstream: with the CORS
 * headers when its origin, method and headers are allowed, without them
 * otherwise (the browser then refuses the request it wanted to make).
 *
 * RESPONSE: every other response of the route, proxied or made by the
 * gateway (a 401 or a 429 the page should be able to read), gets
 * Access-Control-Allow-Origin and the rest when its Origin and its method
 * are allowed, and none when they are not; whatever CORS headers the upstream sent are removed
 * first, so the client sees the gateway's policy only. Unless every origin
 * is allowed, the answer depends on Origin: Vary: Origin says so to caches.
 */
#include "cors.h"

#include <string.h>

/* A preflight's outcome, from ACCESS to RESPONSE (in the request arena). */
struct cors_state {
    bool allowed;
    struct sl_str origin, method, headers; /* what the browser asked */
};

static const char *const results[] = {"allowed", "refused", "preflight", "preflight_refused", NULL};
static const struct sl_counter requests = {
    .name = "sluice_cors_requests_total",
    .help = "Requests with an Origin header, by route and CORS decision.",
    .label = "result",
    .values = results,
};
static const struct sl_counter *const counters[] = {&requests, NULL};

/* The upstream's CORS fields, which the gateway's policy replaces. */
static const char *const cors_fields[] = {
    "Access-Control-Allow-Origin",   "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers", "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",  "Access-Control-Max-Age",
};

static void decided(struct sl_req *req, const char *result)
{
    sl_req_log_field(req, "cors", result);
    sl_req_count(req, &requests, result);
}

/* The next element of a comma-separated list (RFC 9110 5.6.1: optional
 * whitespace around each, empty ones skipped). */
static bool next_item(struct sl_str list, size_t *i, struct sl_str *item)
{
    while (*i < list.len) {
        size_t start, end;

        while (*i < list.len && (list.p[*i] == ' ' || list.p[*i] == '\t' || list.p[*i] == ','))
            (*i)++;
        start = *i;
        while (*i < list.len && list.p[*i] != ',')
            (*i)++;
        end = *i;
        while (end > start && (list.p[end - 1] == ' ' || list.p[end - 1] == '\t'))
            end--;
        if (end > start) {
            *item = (struct sl_str){list.p + start, end - start};
            return true;
        }
    }
    return false;
}

static bool listed(const char *const *list, struct sl_str s, bool caseless)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (caseless ? sl_str_caseeq_lit(s, list[i]) : sl_str_eq(s, sl_str_from(list[i])))
            return true;
    return false;
}

/* A single Origin line naming an allowed origin (any, for "*"). */
static bool origin_allowed(const struct cors_conf *c, const struct sl_req *req, struct sl_str o)
{
    if (c->any_origin)
        return true;
    return sl_req_header_count(req, "Origin") == 1 &&
           sl__cors_origin_allowed(c->origins, c->n_origins, o);
}

/* Every header a preflight asks for is a token the route allows. */
static bool headers_allowed(const struct cors_conf *c, struct sl_str asked)
{
    struct sl_str h;
    size_t i = 0;

    while (next_item(asked, &i, &h))
        if (!sl__cors_is_token(h) || (c->headers != NULL && !listed(c->headers, h, true)))
            return false;
    return true;
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct cors_conf *c = conf;
    struct sl_str origin = sl_req_header(req, "Origin"),
                  method = sl_req_header(req, "Access-Control-Request-Method");
    struct cors_state *st;

    if (origin.p == NULL || method.p == NULL || !sl_str_eq(sl_req_method(req), SL_STR("OPTIONS")))
        return SL_NEXT; /* not a preflight: RESPONSE decorates the answer */
    st = sl_arena_calloc(sl_req_arena(req), sizeof(*st));
    if (st == NULL || sl_req_set_ctx(req, &sl_plugin_cors, st) != 0)
        return SL_ERROR;
    st->origin = origin;
    st->method = method;
    st->headers = sl_req_header(req, "Access-Control-Request-Headers");
    st->allowed = origin_allowed(c, req, origin) && sl__cors_is_token(method) &&
                  (c->any_method || listed(c->methods, method, false)) &&
                  (st->headers.p == NULL || headers_allowed(c, st->headers));
    decided(req, st->allowed ? "preflight" : "preflight_refused");
    return sl_req_respond(req, 204, NULL, NULL) == 0 ? SL_DONE : SL_ERROR;
}

/* Access-Control-Allow-Origin (the origin itself, or "*") and
 * -Allow-Credentials, common to preflights and other answers. */
static void allow_origin(struct sl_req *req, const struct cors_conf *c, struct sl_str origin)
{
    const char *o = c->any_origin ? "*" : sl_arena_strdup_str(sl_req_arena(req), origin);

    if (o == NULL)
        return; /* the arena is full: no CORS headers rather than wrong ones */
    sl_resp_header_add(req, "Access-Control-Allow-Origin", o);
    if (c->credentials)
        sl_resp_header_add(req, "Access-Control-Allow-Credentials", "true");
}

static void preflight_headers(struct sl_req *req, const struct cors_conf *c,
                              const struct cors_state *st)
{
    struct sl_arena *a = sl_req_arena(req);
    const char *methods = c->any_method ? sl_arena_strdup_str(a, st->method) : c->methods_text;
    const char *headers = c->headers_text;

    /* Allowed or not, the answer depends on what was asked. */
    sl_resp_header_add(req, "Vary",
                       "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    if (!st->allowed)
        return;
    if (c->headers == NULL && st->headers.p != NULL)
        headers = sl_arena_strdup_str(a, st->headers); /* checked: tokens and commas */
    allow_origin(req, c, st->origin);
    if (methods != NULL)
        sl_resp_header_add(req, "Access-Control-Allow-Methods", methods);
    if (headers != NULL && headers[0] != '\0')
        sl_resp_header_add(req, "Access-Control-Allow-Headers", headers);
    if (c->max_age_text != NULL)
        sl_resp_header_add(req, "Access-Control-Max-Age", c->max_age_text);
}

/* Vary: Origin, unless one of the response's Vary lines already says it
 * (or "*"). */
static void vary_origin(struct sl_req *req)
{
    struct sl_str vary, v;

    for (unsigned n = 0; (vary = sl_resp_header_nth(req, "Vary", n)).p != NULL; n++)
        for (size_t i = 0; next_item(vary, &i, &v);)
            if (sl_str_eq(v, SL_STR("*")) || sl_str_caseeq_lit(v, "Origin"))
                return;
    sl_resp_header_add(req, "Vary", "Origin");
}

static void on_response(struct sl_req *req, void *conf)
{
    const struct cors_conf *c = conf;
    const struct cors_state *st = sl_req_ctx(req, &sl_plugin_cors);
    struct sl_str origin;
    bool allowed;

    if (st != NULL) {
        preflight_headers(req, c, st); /* the gateway's own 204 */
        return;
    }
    if (sl_resp_proxied(req))
        for (size_t i = 0; i < sizeof(cors_fields) / sizeof(cors_fields[0]); i++)
            sl_resp_header_remove(req, cors_fields[i]);
    origin = sl_req_header(req, "Origin");
    /* With "*" every answer is the same, Origin or not: nothing varies. */
    if (!c->any_origin)
        vary_origin(req);
    if (origin.p == NULL && !c->any_origin)
        return;
    /* A method a preflight could not ask for gets no CORS headers either:
     * a simple one (GET, HEAD, POST) is sent without asking, and counts
     * only if listed. */
    allowed = origin_allowed(c, req, origin) &&
              (c->any_method || listed(c->methods, sl_req_method(req), false));
    if (origin.p != NULL)
        decided(req, allowed ? "allowed" : "refused");
    if (!allowed)
        return;
    allow_origin(req, c, origin);
    if (c->expose_text != NULL)
        sl_resp_header_add(req, "Access-Control-Expose-Headers", c->expose_text);
}

static unsigned id;

const struct sl_plugin sl_plugin_cors = {
    .abi = SL_PLUGIN_ABI,
    .name = "cors",
    .id = &id,
    .conf_parse = sl__cors_conf_parse,
    .access = on_access,
    .response = on_response,
    .counters = counters,
};
