/*
 * api_key plugin: only requests with a known API key get through, and the
 * upstream learns whose key it was.
 *
 * ACCESS: the key comes from the header (X-Api-Key by default) or, when
 * configured, a query parameter; either sent twice is refused. Its SHA-256 is looked up among the
 * route's (compared in constant time); a missing or unknown key gets 401
 * invalid_api_key. A known one goes on with its consumer's name in
 * X-Consumer (replacing whatever the client sent), in the request variable
 * "consumer" (rate_limit's key: consumer) and in the access log; the key
 * itself is taken out of the request unless hide_credentials is false, and
 * never logged.
 */
#include "api_key.h"

#include "sluice/log.h"

static const char *const results[] = {"allowed", "missing", "invalid", NULL};
static const struct sl_counter decisions = {
    .name = "sluice_auth_decisions_total",
    .help = "Authentication decisions, by route, plugin and result.",
    .label = "result",
    .values = results,
    .fixed_labels = "plugin=\"api_key\"",
};
static const struct sl_counter *const counters[] = {&decisions, NULL};

static void decided(struct sl_req *req, const char *result)
{
    sl_req_log_field(req, "auth", result);
    sl_req_count(req, &decisions, result);
}

static enum sl_status reject(struct sl_req *req, const struct ak_conf *c, const char *result,
                             const char *message)
{
    decided(req, result);
    sl_log(SL_LOG_DEBUG, req, "api_key: %s", message);
    if (sl_resp_header_add(req, "WWW-Authenticate", c->challenge) != 0 ||
        sl_req_respond(req, 401, "invalid_api_key", message) != 0)
        return SL_ERROR;
    return SL_DONE;
}

/* The key the request carries: the header's, else the query's; {NULL, 0}
 * when neither has one. *twice: the header, or the query parameter, came
 * more than once (which one the gateway checked and which one the
 * upstream reads could differ: api_key=bad&api_key=good). */
static struct sl_str find_key(struct sl_req *req, const struct ak_conf *c, bool *twice)
{
    struct sl_str k = SL_STR_NULL;

    *twice = (c->header != NULL && sl_req_header_count(req, c->header) > 1) ||
             (c->query != NULL && sl__ak_query_count(sl_req_query(req), c->query) > 1);
    if (c->header != NULL)
        k = sl_req_header(req, c->header);
    if ((k.p == NULL || k.len == 0) && c->query != NULL)
        k = sl_req_query_param(req, c->query);
    return k;
}

/* Take the key out of what goes upstream. */
static int hide(struct sl_req *req, const struct ak_conf *c)
{
    if (c->header != NULL && sl_req_header_set(req, c->header, NULL) != 0)
        return -1;
    if (c->query != NULL && sl_req_query_param_remove(req, c->query) < 0)
        return -1;
    return 0;
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct ak_conf *c = conf;
    unsigned char digest[AK_DIGEST];
    const char *consumer;
    bool twice;
    struct sl_str key = find_key(req, c, &twice);

    if (twice)
        return reject(req, c, "invalid", "send one API key, not several");
    if (key.p == NULL || key.len == 0)
        return reject(req, c, "missing", "an API key is required");
    sl__ak_digest(key.p, key.len, digest);
    consumer = sl__ak_find(&c->keys, digest);
    if (consumer == NULL)
        return reject(req, c, "invalid", "the API key is not valid");
    if ((c->hide_credentials && hide(req, c) != 0) ||
        sl_req_header_set(req, "X-Consumer", consumer) != 0 ||
        sl_req_var_set(req, "consumer", sl_str_from(consumer)) != 0)
        return SL_ERROR;
    sl_req_log_field(req, "consumer", consumer);
    decided(req, "allowed");
    return SL_NEXT;
}

static unsigned id;

const struct sl_plugin sl_plugin_api_key = {
    .abi = SL_PLUGIN_ABI,
    .name = "api_key",
    .id = &id,
    .conf_parse = sl__api_key_conf_parse,
    .access = on_access,
    .counters = counters,
};
