/*
 * jwt plugin: its YAML.
 *
 *   jwt:
 *     keys:                                  # the keys that verify tokens, and/or:
 *       - {file: /etc/sluice/k.pem, alg: RS256, kid: k1}  # a PEM public key
 *       - {secret: "${HS_SECRET}", alg: HS256}            # an HMAC secret
 *     jwks_uri: https://idp/.well-known/jwks.json         # keys from a JWKS, or
 *     discovery: true                        # the issuer's openid-configuration's jwks_uri
 *     ca: /etc/sluice/idp-ca.pem             # the IdP's CA (default: the system's)
 *     jwks_refresh: 10m                      # at least 1s (default 10m, or max-age)
 *     issuer: https://idp.example.com/       # string or list: iss must be one
 *     audience: users-api                    # string or list: aud must hold one
 *     algorithms: [RS256, ES256]             # default: the algs of the keys
 *     leeway: 30s                            # clock skew allowed for exp, nbf, iat
 *     require_exp: true
 *     max_token_size: 8k
 *
 * and what every token-checking plugin reads (sluice/bearer.h): scopes,
 * claims, rules, forward_claims, strip_authorization, token_from, realm.
 */
#include "jwt.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jwks_source.h"
#include "sluice/fetch.h"
#include "verify.h"

#define MAX_LIST 64

/* jwks_refresh: at least 1s (a test's rotation; an IdP is better asked
 * every few minutes), at most 1d, 10m by default. */
#define REFRESH_MIN_MS     1000ull
#define REFRESH_MAX_MS     (24ull * 3600 * 1000)
#define REFRESH_DEFAULT_MS (10ull * 60 * 1000)

/* Every asymmetric alg: what a JWKS's keys may allow. */
#define PKEY_ALGS                                                                                  \
    (((1u << JWT_NALGS) - 1) & ~((1u << JWT_HS256) | (1u << JWT_HS384) | (1u << JWT_HS512)))

static atomic_uint_fast64_t serials = 1;

static struct sl_arena *arena(struct sl_conf_ctx *ctx)
{
    return sl_conf_arena(ctx);
}

/* map[key], a string or a list of strings, into *out (n of them). */
static int str_or_list(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                       const char *const **out, size_t *n)
{
    const struct sl_node *v = sl_node_get(map, key);
    const char **one, **list;

    if (v == NULL || v->type != SL_NODE_SCALAR) {
        if (sl_conf_strlist(ctx, map, key, &list, n, false) != 0)
            return -1;
        if (*n == 0) {
            sl_conf_error(ctx, v, "expected at least one value");
            return -1;
        }
        *out = list;
        return 0;
    }
    one = sl_arena_calloc(arena(ctx), 2 * sizeof(*one));
    if (sl_conf_node_str(ctx, v, &one[0]) != 0)
        return -1;
    *out = one;
    *n = 1;
    return 0;
}

static EVP_PKEY *read_pem(struct sl_conf_ctx *ctx, const struct sl_node *n, const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    EVP_PKEY *pkey;

    if (bio == NULL) {
        sl_conf_error(ctx, n, "cannot read %s: %s", path, strerror(errno ? errno : EIO));
        ERR_clear_error();
        return NULL;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (pkey == NULL)
        sl_conf_error(ctx, n, "%s is not a PEM public key (BEGIN PUBLIC KEY)", path);
    return pkey;
}

static int read_key(struct sl_conf_ctx *ctx, const struct sl_node *n, struct jwt_key *k)
{
    static const char *const keys[] = {"file", "secret", "alg", "kid", NULL};
    const char *alg = NULL, *file = NULL, *secret = NULL, *why;
    int errors = sl_conf_errors(ctx), a = -1;

    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return -1;
    if (sl_conf_str(ctx, n, "alg", &alg, true) == 0 && (a = sl__jwt_alg_parse(alg)) < 0)
        sl_conf_error(ctx, sl_node_get(n, "alg"),
                      "unknown alg \"%s\" (expected HS256, HS384, HS512, RS256, RS384, RS512, "
                      "PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA)",
                      alg);
    sl_conf_str(ctx, n, "kid", &k->kid, false);
    sl_conf_str(ctx, n, "file", &file, false);
    sl_conf_str(ctx, n, "secret", &secret, false);
    if ((file == NULL) == (secret == NULL) && sl_conf_errors(ctx) == errors)
        sl_conf_error(ctx, n, "a key has either file: or secret:");
    if (sl_conf_errors(ctx) != errors || a < 0)
        return -1;
    k->alg = (enum jwt_alg)a;
    k->algs = 1u << a;
    if (secret != NULL) {
        if (a > JWT_HS512) {
            sl_conf_error(ctx, sl_node_get(n, "alg"), "%s takes a public key file:, not a secret",
                          alg);
            return -1;
        }
        if (secret[0] == '\0') {
            sl_conf_error(ctx, sl_node_get(n, "secret"), "the secret is empty");
            return -1;
        }
        if (strlen(secret) < 32u + 16u * (unsigned)a)
            sl_conf_warn(ctx, sl_node_get(n, "secret"),
                         "a secret shorter than the hash (%u bytes) is easy to guess",
                         32u + 16u * (unsigned)a);
        k->secret = (const unsigned char *)secret;
        k->secret_len = strlen(secret);
        return 0;
    }
    if (a <= JWT_HS512) {
        sl_conf_error(ctx, sl_node_get(n, "alg"), "%s takes a secret:, not a key file", alg);
        return -1;
    }
    k->pkey = read_pem(ctx, sl_node_get(n, "file"), file);
    if (k->pkey == NULL)
        return -1;
    why = sl__jwt_key_fits(k->alg, k->pkey);
    if (why != NULL) {
        sl_conf_error(ctx, sl_node_get(n, "alg"), "%s does not fit the key in %s: %s", alg, file,
                      why);
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
        return -1;
    }
    return 0;
}

static void free_keys(struct jwt_key *keys, size_t n)
{
    for (size_t i = 0; keys != NULL && i < n; i++) {
        EVP_PKEY_free(keys[i].pkey);
        keys[i].pkey = NULL;
    }
}

static int read_keys(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    const struct sl_node *list = sl_node_get(node, "keys");
    bool ok = true;

    if (list == NULL) {
        /* Optional with a JWKS: read_jwks() checks that one is there. */
        if (sl_node_get(node, "jwks_uri") != NULL || sl_node_get(node, "discovery") != NULL)
            return 0;
        sl_conf_error(ctx, node,
                      "keys: is required (the keys that verify tokens), or jwks_uri:, or "
                      "discovery: true with issuer:");
        return -1;
    }
    if (list->type != SL_NODE_SEQ || list->n == 0 || list->n > MAX_LIST) {
        sl_conf_error(ctx, list, "expected a list of 1 to %d keys, found %s", MAX_LIST,
                      sl_node_type_name(list));
        return -1;
    }
    c->keys = sl_arena_calloc(arena(ctx), list->n * sizeof(*c->keys));
    c->nkeys = list->n;
    for (size_t i = 0; i < list->n; i++) {
        if (read_key(ctx, list->items[i], &c->keys[i]) != 0) {
            ok = false;
            continue;
        }
        c->algs |= 1u << c->keys[i].alg;
        /* A token naming a kid is checked with that one key: two keys of
         * one kid would leave the second unused. */
        for (size_t j = 0; c->keys[i].kid != NULL && j < i; j++)
            if (c->keys[j].kid != NULL && strcmp(c->keys[j].kid, c->keys[i].kid) == 0) {
                sl_conf_error(ctx, sl_node_get(list->items[i], "kid"),
                              "kid \"%s\" is already key %zu's", c->keys[i].kid, j + 1);
                ok = false;
            }
    }
    return ok ? 0 : -1;
}

static int read_algorithms(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    const struct sl_node *list = sl_node_get(node, "algorithms");
    const char **names;
    size_t n;
    unsigned algs = 0;
    bool ok = true;

    if (sl_conf_strlist(ctx, node, "algorithms", &names, &n, false) != 0)
        return list == NULL ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        int a = sl__jwt_alg_parse(names[i]);

        if (a < 0) {
            sl_conf_error(ctx, list->items[i], "unknown alg \"%s\"", names[i]);
            ok = false;
        } else {
            algs |= 1u << a;
        }
    }
    if (!ok)
        return -1;
    if (n == 0) {
        sl_conf_error(ctx, list, "expected at least one alg");
        return -1;
    }
    for (size_t i = 0; i < c->nkeys; i++)
        if (!(algs & (1u << c->keys[i].alg)))
            sl_conf_warn(ctx, list, "key %zu (%s) is not in algorithms: it verifies nothing", i + 1,
                         sl__jwt_alg_name(c->keys[i].alg));
    c->algs = algs;
    return 0;
}

static int read_limits(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    uint64_t leeway_ms = 30000, size = 8192;
    int errors = sl_conf_errors(ctx);

    sl_conf_duration(ctx, node, "leeway", &leeway_ms, false);
    if (leeway_ms > 24ull * 3600 * 1000)
        sl_conf_error(ctx, sl_node_get(node, "leeway"), "expected at most 1d");
    c->times.leeway_s = (double)leeway_ms / 1000.0;
    c->times.require_exp = true;
    sl_conf_bool(ctx, node, "require_exp", &c->times.require_exp, false);
    if (sl_conf_size(ctx, node, "max_token_size", &size, false) == 0 &&
        (size < 64 || size > 1024 * 1024))
        sl_conf_error(ctx, sl_node_get(node, "max_token_size"), "expected 64 to 1m");
    c->max_token_size = (size_t)size;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

/* An http(s) URL for jwks_uri or issuer (with discovery); plain http only
 * with a warning, unless to this host: anyone on the path could swap keys. */
static int check_url(struct sl_conf_ctx *ctx, const struct sl_node *n, const char *url)
{
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        sl_conf_error(ctx, n, "expected an https:// (or http://) URL, found \"%s\"", url);
        return -1;
    }
    if (strchr(url, ' ') != NULL || strchr(url, '\r') != NULL || strchr(url, '\n') != NULL) {
        sl_conf_error(ctx, n, "a URL has no spaces or line breaks");
        return -1;
    }
    if (url[4] == ':' && !sl_fetch_url_is_loopback(url))
        sl_conf_warn(ctx, n,
                     "keys fetched over plain http:// can be replaced by anyone on the path; "
                     "use https://");
    return 0;
}

/* jwks_uri:, or discovery: true with one issuer:; ca:, jwks_refresh:. */
static int read_jwks(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    const struct sl_node *uri = sl_node_get(node, "jwks_uri"),
                         *disc = sl_node_get(node, "discovery");
    int errors = sl_conf_errors(ctx);
    const char *url = NULL;
    bool discovery = false;

    sl_conf_str(ctx, node, "jwks_uri", &url, false);
    sl_conf_bool(ctx, node, "discovery", &discovery, false);
    if (url != NULL && check_url(ctx, uri, url) == 0 && discovery)
        sl_conf_error(ctx, disc, "either jwks_uri: or discovery: true, not both");
    if (discovery && url == NULL) {
        if (c->nissuers != 1)
            sl_conf_error(ctx, disc, "discovery: true needs issuer: (one URL) to discover from");
        else if (check_url(ctx, sl_node_get(node, "issuer"), c->issuers[0]) == 0) {
            size_t len = strlen(c->issuers[0]);

            /* OIDC Discovery 4: the issuer, less a trailing slash, then the
             * well-known path. */
            if (len > 0 && c->issuers[0][len - 1] == '/')
                len--;
            url = sl_arena_printf(arena(ctx), "%.*s/.well-known/openid-configuration", (int)len,
                                  c->issuers[0]);
        }
    }
    c->discovery = discovery;
    c->refresh_ms = REFRESH_DEFAULT_MS;
    c->refresh_set = sl_node_get(node, "jwks_refresh") != NULL;
    if (sl_conf_duration(ctx, node, "jwks_refresh", &c->refresh_ms, false) == 0 && c->refresh_set &&
        (c->refresh_ms < REFRESH_MIN_MS || c->refresh_ms > REFRESH_MAX_MS))
        sl_conf_error(ctx, sl_node_get(node, "jwks_refresh"), "expected 1s to 1d");
    if (sl_conf_str(ctx, node, "ca", &c->ca_file, false) == 0 && c->ca_file != NULL &&
        access(c->ca_file, R_OK) != 0)
        sl_conf_error(ctx, sl_node_get(node, "ca"), "cannot read %s: %s", c->ca_file,
                      strerror(errno));
    if ((c->ca_file != NULL || c->refresh_set) && url == NULL && !discovery &&
        sl_conf_errors(ctx) == errors)
        sl_conf_error(ctx, sl_node_get(node, c->ca_file != NULL ? "ca" : "jwks_refresh"),
                      "only with jwks_uri: or discovery: true");
    if (sl_conf_errors(ctx) != errors)
        return -1;
    c->jwks_url = url;
    if (url != NULL && sl_node_get(node, "algorithms") == NULL)
        c->algs |= PKEY_ALGS; /* the JWKS's keys say which they allow */
    return 0;
}

/* The lines of keys[].secret written in the file are never quoted under a
 * message: declared before anything reports on them. */
static void hide_secrets(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    const struct sl_node *list = sl_node_get(node, "keys");

    for (size_t i = 0; list != NULL && list->type == SL_NODE_SEQ && i < list->n; i++)
        sl_conf_secret(ctx, sl_node_get(list->items[i], "secret"));
}

void *sl__jwt_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"keys",      "issuer",      "audience",       "algorithms",
                                       "leeway",    "require_exp", "max_token_size", "jwks_uri",
                                       "discovery", "ca",          "jwks_refresh",   SL_BEARER_KEYS,
                                       NULL};
    struct jwt_conf *c = sl_arena_calloc(arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);

    hide_secrets(ctx, node);
    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    c->serial = atomic_fetch_add(&serials, 1);
    if (read_keys(ctx, node, c) == 0)
        read_algorithms(ctx, node, c);
    if (sl_node_get(node, "issuer") != NULL)
        str_or_list(ctx, node, "issuer", &c->issuers, &c->nissuers);
    if (sl_node_get(node, "audience") != NULL)
        str_or_list(ctx, node, "audience", &c->audiences, &c->naudiences);
    read_jwks(ctx, node, c);
    read_limits(ctx, node, c);
    c->bearer = sl_bearer_conf(ctx, node, "jwt", &sl__jwt_decisions);
    if (sl_conf_errors(ctx) != errors) {
        /* No conf_free follows a NULL: give the keys back here. */
        free_keys(c->keys, c->nkeys);
        return NULL;
    }
    if (c->jwks_url != NULL)
        c->jwks =
            sl__jwks_source_get(c->jwks_url, c->discovery, c->nissuers == 1 ? c->issuers[0] : NULL,
                                c->ca_file, c->refresh_ms, c->refresh_set);
    return c;
}

void sl__jwt_conf_free(void *conf)
{
    struct jwt_conf *c = conf;

    free_keys(c->keys, c->nkeys);
    if (c->jwks != NULL)
        sl__jwks_source_put(c->jwks);
}
