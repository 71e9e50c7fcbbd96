/*
 * headers plugin: set, add and remove request headers on their way
 * upstream (ACCESS phase, after the plugins that check and choose: a
 * header can carry the consumer or a claim they left) and response
 * headers on their way to the client (RESPONSE phase: proxied answers and
 * the gateway's own). In each direction removals come first, then set
 * (every line of the name replaced by one), then add (one more line).
 *
 * On the answers the gateway makes itself, Content-Type and Date are the
 * gateway's: the core refuses to change them there (sluice/req.h), so the
 * response part leaves them alone.
 *
 * Values are templates read at load (template.h). What a variable brings
 * at request time can come from a client (a claim of a token, the address
 * it forwards): its control characters are dropped, so no value can hold
 * CR, LF or NUL. A value that comes out empty is not sent: set then only
 * removes the name, add adds nothing.
 */
#include "headers.h"

static struct sl_str value_of(struct sl_req *req, const struct hdr_seg *s)
{
    switch (s->var) {
    case HV_TEXT:
        return (struct sl_str){s->text, s->len};
    case HV_CLIENT_IP:
        return sl_str_from(sl_req_real_ip(req));
    case HV_REQUEST_ID:
        return sl_str_from(sl_req_id(req));
    case HV_ROUTE:
        return sl_str_from(sl_req_route(req));
    case HV_CONSUMER:
        return sl_req_var(req, "consumer");
    case HV_HOST:
        return sl_req_host(req);
    case HV_JWT:
        return sl_req_var(req, s->text);
    }
    return SL_STR_NULL;
}

/*
 * The value of t for req: the template's own text when it has no
 * variables, else a copy in the request arena with every control
 * character of the variables' values dropped. "" for an empty value,
 * NULL when the arena is full.
 */
static const char *render(struct sl_req *req, const struct hdr_tmpl *t)
{
    size_t len = 0, n = 0;
    char *out;

    if (t->text != NULL)
        return t->text;
    for (size_t i = 0; i < t->n; i++)
        len += value_of(req, &t->segs[i]).len;
    out = sl_arena_alloc(sl_req_arena(req), len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        struct sl_str v = value_of(req, &t->segs[i]);

        for (size_t j = 0; j < v.len; j++)
            if (!sl__hdr_ctl((unsigned char)v.p[j]))
                out[n++] = v.p[j];
    }
    out[n] = '\0';
    return out;
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct hdr_ops *o = &((const struct hdr_conf *)conf)->request;
    int r = 0;

    for (size_t i = 0; i < o->n_remove; i++)
        r |= sl_req_header_set(req, o->remove[i].name, NULL);
    for (size_t i = 0; i < o->n_set; i++) {
        const char *v = render(req, &o->set[i].value);

        r |= v == NULL ? -1 : sl_req_header_set(req, o->set[i].name, v[0] ? v : NULL);
    }
    for (size_t i = 0; i < o->n_add; i++) {
        const char *v = render(req, &o->add[i].value);

        if (v == NULL || v[0] != '\0')
            r |= v == NULL ? -1 : sl_req_header_add(req, o->add[i].name, v);
    }
    return r == 0 ? SL_NEXT : SL_ERROR; /* -1: the capped request arena is full */
}

/* The status is decided: a full arena leaves the rest of the response as
 * it is (nothing to fail). */
static void on_response(struct sl_req *req, void *conf)
{
    const struct hdr_ops *o = &((const struct hdr_conf *)conf)->response;

    for (size_t i = 0; i < o->n_remove; i++)
        sl_resp_header_remove(req, o->remove[i].name);
    for (size_t i = 0; i < o->n_set; i++) {
        const char *v = render(req, &o->set[i].value);

        if (v != NULL && v[0] != '\0')
            sl_resp_header_set(req, o->set[i].name, v);
        else if (v != NULL)
            sl_resp_header_remove(req, o->set[i].name);
    }
    for (size_t i = 0; i < o->n_add; i++) {
        const char *v = render(req, &o->add[i].value);

        if (v != NULL && v[0] != '\0')
            sl_resp_header_add(req, o->add[i].name, v);
    }
}

static unsigned id;

const struct sl_plugin sl_plugin_headers = {
    .abi = SL_PLUGIN_ABI,
    .name = "headers",
    .id = &id,
    .conf_parse = sl__headers_conf_parse,
    .access = on_access,
    .response = on_response,
};
