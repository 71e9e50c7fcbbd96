/*
 * auth: what a route asks of a bearer token's claims, as sl_bearer_conf()
 * reads it (bearer_conf.c) and sl_bearer_find()/sl_bearer_decide() apply
 * it (bearer.c), with the checks on claims themselves (claims.c). The
 * public side is sluice/bearer.h.
 */
#ifndef SL_AUTH_BEARER_H
#define SL_AUTH_BEARER_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/bearer.h"

/* A claim that must hold one of values: path is a claim name or a dotted
 * path into nested objects ("org.id"). */
struct sl_claim_req {
    const char *path;
    const char *const *values;
    size_t n;
};

/* What a request's token must carry: every scope, and each claim. */
struct sl_authz {
    const char *const *scopes;
    size_t nscopes;
    const struct sl_claim_req *claims;
    size_t nclaims;
};

/* A per-method rule: for a request whose method is in methods, authz is
 * required as well as the route's own. */
struct sl_authz_rule {
    const char *const *methods;
    size_t nmethods;
    struct sl_authz authz;
};

/* A claim forwarded upstream in a header. */
struct sl_claim_forward {
    const char *claim; /* a name or dotted path */
    const char *header;
};

enum sl_token_from { SL_TOKEN_HEADER, SL_TOKEN_COOKIE, SL_TOKEN_QUERY };

struct sl_token_source {
    enum sl_token_from kind;
    const char *name;
    bool bearer;       /* header:Authorization: the "Bearer " scheme */
    struct sl_key key; /* SL_TOKEN_COOKIE: the key sl_req_key() reads */
};

struct sl_bearer {
    const char *plugin;
    const struct sl_counter *decisions;
    struct sl_authz authz;
    const struct sl_authz_rule *rules;
    size_t nrules;
    const struct sl_claim_forward *forwards;
    size_t nforwards;
    bool strip_authorization;
    const struct sl_token_source *sources;
    size_t nsources;
    /* WWW-Authenticate values, made once: no token, a bad token, and the
     * start of an insufficient_scope one (scope="..." is added per rule). */
    const char *www_missing;
    const char *www_invalid;
    const char *www_forbidden;
};

/* The token grants scope: one word of the space-separated "scope", or an
 * element of "scp" (an array, or a space-separated string). */
bool sl__claims_have_scope(const json_t *claims, const char *scope);

/* Every scope and every claim of a holds. A claim holds when its value (or,
 * for an array, one of its elements) is one of the listed values. */
bool sl__claims_grant(const json_t *claims, const struct sl_authz *a);

/* A claim path is usable: dot-separated names, none empty. */
bool sl__claim_path_ok(const char *path);

#endif
