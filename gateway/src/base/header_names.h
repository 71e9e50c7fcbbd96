/*
 * The request header names the gateway owns: those it sets or strips on
 * every proxied request (framing and hop-by-hop headers, Host,
 * X-Forwarded-*, X-Client-Cert-Subject) and those the plugins declare (the
 * request id, a forwarded claim). A name is matched folded: '_' read as
 * '-', in any case (X_Forwarded_For is X-Forwarded-For to WSGI, CGI and PHP
 * backends). Pure functions; config/header_policy.h says what is done with
 * them.
 */
#ifndef SL_BASE_HEADER_NAMES_H
#define SL_BASE_HEADER_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/arena.h"
#include "sluice/str.h"

/* A set of names (in an arena), matched folded. */
struct sl_header_names {
    struct sl_str *names;
    size_t n, cap;
};

/* Add name (copied into arena a); adding it twice, in any spelling, is fine. */
void sl__header_names_add(struct sl_header_names *l, struct sl_arena *a, const char *name);

/* Whether name folds to a built-in owned name or to one of declared (which
 * may be NULL). */
bool sl__header_owned(const struct sl_header_names *declared, struct sl_str name);

/* Whether a and b are the same name once '_' is read as '-' (any case). */
bool sl__header_fold_eq(struct sl_str a, struct sl_str b);

#endif
