/*
 * oauth_introspection plugin: the exchange with the IdP (RFC 7662), with no
 * I/O: the request's form body and header lines, and what an answer means.
 * Unit-tested by test_introspection.c.
 */
#ifndef SL_PLUGIN_OI_ANSWER_H
#define SL_PLUGIN_OI_ANSWER_H

#include <stddef.h>

#include "store.h"

/* "token=TOKEN&token_type_hint=access_token", form-urlencoded; malloc'd,
 * *n its length. */
char *sl__oi_form_body(const char *token, size_t len, size_t *n);

/*
 * The header lines of every call (each ending in CRLF): HTTP Basic with
 * client_id and client_secret, each form-urlencoded first (RFC 6749
 * 2.3.1), the form's Content-Type and Accept: application/json. malloc'd.
 */
char *sl__oi_headers(const char *client_id, const char *client_secret);

/*
 * What the IdP's answer (HTTP status, body) means at now (Unix seconds),
 * and until when it may be kept (*until; 0: not at all). A 200 with a JSON
 * object whose "active" is true: OI_ACTIVE, kept min(cache_ttl, exp +
 * leeway - now), or OI_INACTIVE "expired" when its exp (and the leeway)
 * has passed, or "invalid" for a refresh token (its token_type says so:
 * never an access token); "active" anything else: OI_INACTIVE, kept
 * negative_ttl; any other status or body: OI_FAILED, never kept.
 */
struct oi_outcome sl__oi_answer(int status, const char *body, size_t len, double now,
                                const struct oi_times *t, double *until);

#endif
