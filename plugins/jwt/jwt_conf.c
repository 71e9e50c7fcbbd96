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
 *     scopes: [users:read]                   # all required
 *     claims: {role: [admin, editor]}        # each must hold one of its values
 *     rules: [{methods: [POST], scopes: [users:write], claims: {...}}]
 *     forward_claims: {sub: X-User-Id}
 *     strip_authorization: false
 *     token_from: [header:Authorization]     # header:NAME | cookie:NAME | query:NAME
 *     realm: api
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

/* An HTTP token (RFC 9110 5.6.2): header names, methods. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (strchr("!#$%&'*+-.^_`|~", *s) == NULL && !(*s >= '0' && *s <= '9') &&
            !(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z'))
            return false;
    return true;
}

/* A scope (RFC 6749 3.3): printable ASCII but space, '"' and '\'. It goes
 * into a quoted WWW-Authenticate parameter as it is. */
static bool is_scope(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
            return false;
    return true;
}

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

/* claims: {PATH: VALUE or [VALUES]} */
static int read_claims(struct sl_conf_ctx *ctx, const struct sl_node *map, struct jwt_authz *a)
{
    const struct sl_node *m = sl_node_get(map, "claims");
    struct jwt_claim_req *reqs;
    bool ok = true;

    if (m == NULL)
        return 0;
    if (m->type != SL_NODE_MAP || m->n == 0) {
        sl_conf_error(ctx, m, "expected a map of claims to values, found %s", sl_node_type_name(m));
        return -1;
    }
    reqs = sl_arena_calloc(arena(ctx), m->n * sizeof(*reqs));
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_node *item = m->items[i];

        reqs[i].path = item->key;
        if (!sl__jwt_claim_path_ok(item->key)) {
            sl_conf_error(ctx, item, "bad claim name \"%s\" (names, dot-separated)", item->key);
            ok = false;
        } else if (str_or_list(ctx, m, item->key, &reqs[i].values, &reqs[i].n) != 0) {
            ok = false;
        }
    }
    a->claims = reqs;
    a->nclaims = m->n;
    return ok ? 0 : -1;
}

static int read_scopes(struct sl_conf_ctx *ctx, const struct sl_node *map, struct jwt_authz *a)
{
    const char **scopes;
    size_t n;
    bool ok = true;

    if (sl_conf_strlist(ctx, map, "scopes", &scopes, &n, false) != 0)
        return sl_node_get(map, "scopes") == NULL ? 0 : -1;
    for (size_t i = 0; i < n; i++)
        if (!is_scope(scopes[i])) {
            sl_conf_error(ctx, sl_node_get(map, "scopes")->items[i],
                          "a scope is printable ASCII without spaces, quotes or backslashes");
            ok = false;
        }
    a->scopes = scopes;
    a->nscopes = n;
    return ok ? 0 : -1;
}

static int read_rules(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    static const char *const keys[] = {"methods", "scopes", "claims", NULL};
    const struct sl_node *list = sl_node_get(node, "rules");
    struct jwt_rule *rules;
    int errors = sl_conf_errors(ctx);

    if (list == NULL)
        return 0;
    if (list->type != SL_NODE_SEQ || list->n == 0 || list->n > MAX_LIST) {
        sl_conf_error(ctx, list, "expected a list of 1 to %d rules, found %s", MAX_LIST,
                      sl_node_type_name(list));
        return -1;
    }
    rules = sl_arena_calloc(arena(ctx), list->n * sizeof(*rules));
    for (size_t i = 0; i < list->n; i++) {
        const struct sl_node *r = list->items[i];
        const char **methods;

        if (sl_conf_keys(ctx, r, keys) != 0 && r->type != SL_NODE_MAP)
            continue;
        if (sl_conf_strlist(ctx, r, "methods", &methods, &rules[i].nmethods, true) == 0) {
            rules[i].methods = methods;
            for (size_t m = 0; m < rules[i].nmethods; m++)
                if (!is_token(methods[m]))
                    sl_conf_error(ctx, sl_node_get(r, "methods")->items[m],
                                  "\"%s\" is not a method", methods[m]);
        }
        read_scopes(ctx, r, &rules[i].authz);
        read_claims(ctx, r, &rules[i].authz);
    }
    c->rules = rules;
    c->nrules = list->n;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

static int read_forwards(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    const struct sl_node *m = sl_node_get(node, "forward_claims");
    struct jwt_forward *f;
    int errors = sl_conf_errors(ctx);

    if (m == NULL)
        return 0;
    if (m->type != SL_NODE_MAP || m->n > MAX_LIST) {
        sl_conf_error(ctx, m, "expected a map of claims to header names, found %s",
                      sl_node_type_name(m));
        return -1;
    }
    f = sl_arena_calloc(arena(ctx), (m->n + 1) * sizeof(*f));
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_node *item = m->items[i];

        f[i].claim = item->key;
        if (!sl__jwt_claim_path_ok(item->key))
            sl_conf_error(ctx, item, "bad claim name \"%s\" (names, dot-separated)", item->key);
        if (sl_conf_node_str(ctx, item, &f[i].header) != 0)
            continue;
        if (!is_token(f[i].header)) {
            sl_conf_error(ctx, item, "\"%s\" is not a header name", f[i].header);
            continue;
        }
        /* The client's X_User_Id never reaches the upstream either. */
        sl_conf_header_owned(ctx, f[i].header);
    }
    c->forwards = f;
    c->nforwards = m->n;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

static int read_sources(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    static const char *const fallback[] = {"header:Authorization", NULL};
    static const char *const kinds[] = {"header:", "cookie:", "query:"};
    const struct sl_node *list = sl_node_get(node, "token_from");
    const char *const *names = fallback;
    const char **got;
    struct jwt_source *s;
    size_t n = 1;
    int errors = sl_conf_errors(ctx);

    if (sl_conf_strlist(ctx, node, "token_from", &got, &n, false) == 0) {
        names = got;
        if (n == 0 || n > 8) {
            sl_conf_error(ctx, list, "expected 1 to 8 places to look for the token");
            return -1;
        }
    } else if (list != NULL) {
        return -1;
    }
    s = sl_arena_calloc(arena(ctx), n * sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        int k = 0;

        while (k < 3 && strncmp(names[i], kinds[k], strlen(kinds[k])) != 0)
            k++;
        if (k == 3 || !is_token(names[i] + strlen(kinds[k]))) {
            sl_conf_error(ctx, list->items[i],
                          "expected header:NAME, cookie:NAME or query:NAME, found \"%s\"",
                          names[i]);
            continue;
        }
        s[i].kind = (enum jwt_source_kind)k;
        s[i].name = names[i] + strlen(kinds[k]);
        s[i].bearer = k == JWT_FROM_HEADER && strcasecmp(s[i].name, "Authorization") == 0;
        s[i].key = (struct sl_key){SL_KEY_COOKIE, s[i].name, names[i]};
    }
    c->sources = s;
    c->nsources = n;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

/* The WWW-Authenticate values (RFC 6750 3): no error code when the request
 * had no token at all. */
static int read_realm(struct sl_conf_ctx *ctx, const struct sl_node *node, struct jwt_conf *c)
{
    const char *realm = NULL;
    char *r = NULL;

    if (sl_conf_str(ctx, node, "realm", &realm, false) < 0)
        return -1;
    if (realm != NULL) {
        for (const char *p = realm; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\') {
                sl_conf_error(ctx, sl_node_get(node, "realm"),
                              "a realm has no quotes, backslashes or control characters");
                return -1;
            }
        r = sl_arena_printf(arena(ctx), "realm=\"%s\"", realm);
    }
    c->www_missing = r != NULL ? sl_arena_printf(arena(ctx), "Bearer %s", r) : "Bearer";
    c->www_invalid = sl_arena_printf(arena(ctx), "Bearer %s%serror=\"invalid_token\"", r ? r : "",
                                     r ? ", " : "");
    c->www_forbidden = sl_arena_printf(arena(ctx), "Bearer %s%serror=\"insufficient_scope\"",
                                       r ? r : "", r ? ", " : "");
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
    sl_conf_bool(ctx, node, "strip_authorization", &c->strip_authorization, false);
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

void *sl__jwt_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"keys",
                                       "issuer",
                                       "audience",
                                       "algorithms",
                                       "leeway",
                                       "require_exp",
                                       "max_token_size",
                                       "scopes",
                                       "claims",
                                       "rules",
                                       "forward_claims",
                                       "strip_authorization",
                                       "token_from",
                                       "realm",
                                       "jwks_uri",
                                       "discovery",
                                       "ca",
                                       "jwks_refresh",
                                       NULL};
    struct jwt_conf *c = sl_arena_calloc(arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);

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
    read_scopes(ctx, node, &c->authz);
    read_claims(ctx, node, &c->authz);
    read_rules(ctx, node, c);
    read_forwards(ctx, node, c);
    read_sources(ctx, node, c);
    read_realm(ctx, node, c);
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
