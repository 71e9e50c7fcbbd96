/*
 * What plugins see and change of the response (sluice/req.h): its status,
 * its header fields (the upstream's, in req->resp, and those plugins add,
 * in req->resp_extra), whether it is proxied at all.
 */
#include <strings.h>

#include "http/req.h"

/*
 * The fields the core writes itself and a plugin cannot add, replace or
 * take out: the framing (h1.c) always, and on an answer the gateway is
 * making (its RESPONSE phase: started, not proxied) its own Content-Type
 * and Date too (respond.c), where a plugin's line would make two.
 */
static bool core_owned(const struct sl_req *req, const char *name)
{
    if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0 ||
        strcasecmp(name, "Connection") == 0)
        return true;
    return req->resp_started && !req->resp_proxied &&
           (strcasecmp(name, "Content-Type") == 0 || strcasecmp(name, "Date") == 0);
}

int sl_resp_header_add(struct sl_req *req, const char *name, const char *value)
{
    if (core_owned(req, name))
        return -1;
    return sl__req_kv_set(req, &req->resp_extra, name, sl_str_from(value), false);
}

int sl_resp_status(const struct sl_req *req)
{
    return req->status;
}

bool sl_resp_proxied(const struct sl_req *req)
{
    return req->resp_proxied;
}

struct sl_str sl_resp_header_nth(const struct sl_req *req, const char *name, unsigned nth)
{
    const struct sl_head *h = &req->resp;
    size_t len = strlen(name);

    /* The upstream's head, without its trailers; then the plugins'. */
    for (uint32_t i = 0; req->resp_proxied && i < (h->in_trailers ? h->trailers_from : h->n); i++) {
        const struct sl_header *f = &h->fields[i];

        if (f->name.len == len && strncasecmp(f->name.p, name, len) == 0 && nth-- == 0)
            return f->value;
    }
    for (const struct sl_kv *kv = req->resp_extra; kv != NULL; kv = kv->next)
        if (strcasecmp(kv->name, name) == 0 && nth-- == 0)
            return kv->value;
    return SL_STR_NULL;
}

struct sl_str sl_resp_header(const struct sl_req *req, const char *name)
{
    return sl_resp_header_nth(req, name, 0);
}

int sl_resp_header_remove(struct sl_req *req, const char *name)
{
    struct sl_head *h = &req->resp;

    if (core_owned(req, name))
        return -1;
    if (req->resp_proxied) {
        size_t len = strlen(name);

        for (uint32_t i = 0; i < h->n; i++) {
            struct sl_header *f = &h->fields[i];

            if (f->name.len == len && strncasecmp(f->name.p, name, len) == 0) {
                /* Hidden from sl_resp_header() too. */
                f->drop = true;
                f->name = SL_STR("");
            }
        }
    }
    for (struct sl_kv **kv = &req->resp_extra; *kv != NULL;) {
        if (strcasecmp((*kv)->name, name) == 0)
            *kv = (*kv)->next;
        else
            kv = &(*kv)->next;
    }
    return 0;
}

int sl_resp_header_set(struct sl_req *req, const char *name, const char *value)
{
    if (sl_resp_header_remove(req, name) != 0)
        return -1;
    return sl_resp_header_add(req, name, value);
}
