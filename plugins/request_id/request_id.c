/*
 * request_id plugin: every request gets an id, carried upstream and back to
 * the client in X-Request-Id and written in the access log and error lines.
 * A sane id sent by the client (1 to 64 characters from [A-Za-z0-9._:-]) is
 * kept, so one id follows a request across services; anything else is
 * replaced by a fresh UUID (version 4).
 */
#include "request_id.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "sluice/alloc.h"

#define MAX_ID 64

/* xoshiro256** per worker: fast, and ids need to be unique, not secret. */
struct rng {
    uint64_t s[4];
};

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(struct rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void *worker_init(uv_loop_t *loop)
{
    struct rng *r = sl_calloc(1, sizeof(*r), "the request_id plugin's worker state");

    (void)loop;
    if (getrandom(r->s, sizeof(r->s), 0) != (ssize_t)sizeof(r->s)) {
        /* No entropy source: time and address still make ids unique. */
        r->s[0] = (uint64_t)time(NULL) ^ (uintptr_t)r;
        r->s[1] = (uint64_t)clock() * 0x9e3779b97f4a7c15ull;
        r->s[2] = 0x243f6a8885a308d3ull;
        r->s[3] = 0x13198a2e03707344ull;
    }
    return r;
}

static void worker_fini(void *wdata)
{
    free(wdata);
}

static bool sane(struct sl_str id)
{
    if (id.len == 0 || id.len > MAX_ID)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

static void fresh_id(struct sl_req *req)
{
    static const char hex[] = "0123456789abcdef";
    struct rng *r = sl_req_worker_data(req, &sl_plugin_request_id);
    uint64_t a = next(r), b = next(r);
    char id[37];
    int o = 0;

    /* UUID version 4, variant 1. */
    a = (a & ~0xf000ull) | 0x4000ull;
    b = (b & ~(3ull << 62)) | (2ull << 62);
    for (int i = 15; i >= 0; i--) {
        id[o++] = hex[(a >> (i * 4)) & 15];
        if (o == 8 || o == 13)
            id[o++] = '-';
    }
    id[o++] = '-';
    for (int i = 15; i >= 0; i--) {
        id[o++] = hex[(b >> (i * 4)) & 15];
        if (o == 23)
            id[o++] = '-';
    }
    id[o] = '\0';
    sl_req_set_id(req, (struct sl_str){id, 36});
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    struct request_id_conf *c = conf;
    struct sl_str incoming = sl_req_header(req, c->header);

    /* Exactly one id goes upstream: the client's first, if it is sane, or a
     * fresh one. A second line (whatever it holds) is replaced with it. */
    if (!(c->trust_incoming && sane(incoming) && sl_req_set_id(req, incoming) == 0))
        fresh_id(req);
    /* Always set: the client's line may be gone (a Connection option names
     * it) or have company; the upstream gets exactly the id we log. */
    return sl_req_header_set(req, c->header, sl_req_id(req)) == 0 ? SL_NEXT : SL_ERROR;
}

static void on_response(struct sl_req *req, void *conf)
{
    struct request_id_conf *c = conf;

    /* A request answered before ACCESS ran (404, 400) still gets an id:
     * the client's own if it is sane, as for a proxied request. */
    if (sl_req_id(req)[0] == '\0') {
        struct sl_str incoming = sl_req_header(req, c->header);

        if (!(c->trust_incoming && sane(incoming) && sl_req_set_id(req, incoming) == 0))
            fresh_id(req);
    }
    sl_resp_header_add(req, c->header, sl_req_id(req));
}

static unsigned id;

const struct sl_plugin sl_plugin_request_id = {
    .abi = SL_PLUGIN_ABI,
    .name = "request_id",
    .id = &id,
    .conf_parse = sl__request_id_conf_parse,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = on_access,
    .response = on_response,
};
