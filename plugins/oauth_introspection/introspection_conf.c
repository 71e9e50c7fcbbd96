/*
 * oauth_introspection plugin: its YAML.
 *
 *   oauth_introspection:
 *     endpoint: https://idp.example.com/oauth2/introspect  # required
 *     client_id: gateway                     # required: HTTP Basic to the endpoint
 *     client_secret: "${INTROSPECTION_SECRET}"             # required
 *     ca: /etc/sluice/idp-ca.pem             # the IdP's CA (default: the system's)
 *     timeout: 2s                            # slower than this: 503 auth_unavailable
 *     cache_ttl: 60s                         # active answers, at most until the token's exp
 *     negative_ttl: 10s                      # inactive answers
 *     leeway: 0s                             # clock skew allowed for exp and nbf
 *     max_token_size: 8k
 *
 * and what every token-checking plugin reads (sluice/bearer.h): scopes,
 * claims, rules, forward_claims, strip_authorization, token_from, realm.
 */
#include "introspection.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/fetch.h"
#include "sluice/str.h"

#include "answer.h"

#define TIMEOUT_MIN_MS 100ull
#define TIMEOUT_MAX_MS 60000ull
#define TTL_MAX_MS     (24ull * 3600 * 1000)
#define NEG_TTL_MAX_MS (3600ull * 1000)

/* An http(s) URL; plain http only with a warning, unless to this host:
 * anyone on the path could read the tokens and the client secret. */
static int read_endpoint(struct sl_conf_ctx *ctx, const struct sl_node *node, struct oi_conf *c)
{
    const struct sl_node *n = sl_node_get(node, "endpoint");
    const char *url;

    if (sl_conf_str(ctx, node, "endpoint", &url, true) != 0)
        return -1;
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        sl_conf_error(ctx, n, "expected an https:// (or http://) URL, found \"%s\"", url);
        return -1;
    }
    if (!sl_fetch_url_ok(url)) {
        sl_conf_error(ctx, n,
                      "expected a URL with a host, an optional port (1-65535), no user:password@ "
                      "and no spaces, found \"%s\"",
                      url);
        return -1;
    }
    if (url[4] == ':' && !sl_fetch_url_is_loopback(url))
        sl_conf_warn(ctx, n,
                     "tokens and the client secret sent over plain http:// can be read by "
                     "anyone on the path; use https://");
    c->call.endpoint = url;
    return 0;
}

static int read_client(struct sl_conf_ctx *ctx, const struct sl_node *node, struct oi_conf *c)
{
    const char *id = NULL, *secret = NULL;

    sl_conf_str(ctx, node, "client_id", &id, true);
    sl_conf_str(ctx, node, "client_secret", &secret, true);
    if (id == NULL || secret == NULL)
        return -1;
    if (id[0] == '\0' || secret[0] == '\0') {
        sl_conf_error(ctx, sl_node_get(node, id[0] == '\0' ? "client_id" : "client_secret"),
                      "expected a value, found an empty string");
        return -1;
    }
    c->headers = sl__oi_headers(id, secret);
    c->call.headers = c->headers;
    c->client_id = id;
    c->client_secret = secret;
    return 0;
}

static int read_times(struct sl_conf_ctx *ctx, const struct sl_node *node, struct oi_conf *c)
{
    uint64_t timeout = 2000, ttl = 60000, neg = 10000, size = 8192, leeway = 0;
    int errors = sl_conf_errors(ctx);

    if (sl_conf_duration(ctx, node, "timeout", &timeout, false) == 0 &&
        (timeout < TIMEOUT_MIN_MS || timeout > TIMEOUT_MAX_MS))
        sl_conf_error(ctx, sl_node_get(node, "timeout"), "expected 100ms to 60s");
    if (sl_conf_duration(ctx, node, "cache_ttl", &ttl, false) == 0 && ttl > TTL_MAX_MS)
        sl_conf_error(ctx, sl_node_get(node, "cache_ttl"), "expected at most 1d (0: not kept)");
    if (sl_conf_duration(ctx, node, "negative_ttl", &neg, false) == 0 && neg > NEG_TTL_MAX_MS)
        sl_conf_error(ctx, sl_node_get(node, "negative_ttl"), "expected at most 1h (0: not kept)");
    if (sl_conf_duration(ctx, node, "leeway", &leeway, false) == 0 && leeway > 3600ull * 1000)
        sl_conf_error(ctx, sl_node_get(node, "leeway"), "expected at most 1h");
    if (sl_conf_size(ctx, node, "max_token_size", &size, false) == 0 &&
        (size < 16 || size > 1024 * 1024))
        sl_conf_error(ctx, sl_node_get(node, "max_token_size"), "expected 16 to 1m");
    c->call.timeout_ms = timeout;
    c->call.times.cache_ttl_s = (double)ttl / 1000.0;
    c->call.times.negative_ttl_s = (double)neg / 1000.0;
    c->call.times.leeway_s = (double)leeway / 1000.0;
    c->max_token_size = (size_t)size;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

/* Only configs asking the same IdP the same way share answers and calls:
 * the same endpoint, credentials, CA, timeout and times (a route with a
 * shorter cache_ttl never gets an answer kept longer for another). */
static uint64_t ident(const struct oi_conf *c)
{
    const char *parts[] = {c->call.endpoint, c->client_id, c->client_secret,
                           c->call.ca_file ? c->call.ca_file : ""};
    uint64_t h = 0x243f6a8885a308d3ull;

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        h = sl_hash(h, parts[i], strlen(parts[i]) + 1);
    h = sl_hash(h, &c->call.timeout_ms, sizeof(c->call.timeout_ms));
    return sl_hash(h, &c->call.times, sizeof(c->call.times));
}

/* The header lines hold the client secret: wiped before they go. */
static void free_headers(char *h)
{
    if (h != NULL)
        OPENSSL_cleanse(h, strlen(h));
    free(h);
}

void *sl__oi_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {
        "endpoint",     "client_id", "client_secret",  "ca",           "timeout", "cache_ttl",
        "negative_ttl", "leeway",    "max_token_size", SL_BEARER_KEYS, NULL};
    struct oi_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);

    /* Its line is never quoted under a message, whatever reports on it. */
    sl_conf_secret(ctx, sl_node_get(node, "client_secret"));
    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    if (read_endpoint(ctx, node, c) == 0)
        read_client(ctx, node, c);
    if (sl_conf_str(ctx, node, "ca", &c->call.ca_file, false) == 0) {
        if (access(c->call.ca_file, R_OK) != 0)
            sl_conf_error(ctx, sl_node_get(node, "ca"), "cannot read %s: %s", c->call.ca_file,
                          strerror(errno));
        else if (c->call.endpoint != NULL && c->call.endpoint[4] == ':')
            sl_conf_warn(ctx, sl_node_get(node, "ca"), "unused: the endpoint is http://");
    }
    read_times(ctx, node, c);
    if (sl_conf_errors(ctx) == errors)
        c->call.ident = ident(c);
    c->bearer = sl_bearer_conf(ctx, node, "oauth_introspection", &sl__oi_decisions);
    if (sl_conf_errors(ctx) != errors) {
        /* No conf_free follows a NULL. */
        free_headers(c->headers);
        return NULL;
    }
    return c;
}

void sl__oi_conf_free(void *conf)
{
    struct oi_conf *c = conf;

    free_headers(c->headers);
}
