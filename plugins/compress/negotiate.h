/*
 * compress plugin: the pure part of the decision, no I/O and no request:
 * what a request's Accept-Encoding accepts (RFC 9110 12.5.3), whether a
 * Content-Type is one of the configured media types, and whether a
 * comma-separated field (Cache-Control, Vary) lists a token. Unit-tested
 * by test_compress.c.
 */
#ifndef SL_PLUGIN_COMPRESS_NEGOTIATE_H
#define SL_PLUGIN_COMPRESS_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/str.h"

/* The content codings the plugin makes; CZ_IDENTITY is "leave it alone". */
enum cz_coding {
    CZ_IDENTITY = -1,
    CZ_BR = 0,
    CZ_GZIP = 1,
};
#define CZ_CODINGS 2

/* The token of a coding as it goes in Content-Encoding ("br", "gzip"). */
const char *sl__cz_coding_name(enum cz_coding c);

/*
 * What one Accept-Encoding value says: the weight of each coding the
 * plugin makes, of identity and of "*", in thousandths (q=0.8 is 800),
 * or -1 where the value does not name it. Coding names are compared
 * without regard to case, x-gzip counts as gzip, an element whose weight
 * is not a valid qvalue is ignored, and of two elements naming one coding
 * the first counts.
 */
struct cz_accept {
    int q[CZ_CODINGS];
    int identity;
    int star;
};

void sl__cz_accept_parse(struct sl_str value, struct cz_accept *out);

/*
 * The coding to use, of the n in order (the config's algorithms, most
 * preferred first): the acceptable one (q > 0, its own weight or else
 * "*"'s) with the highest weight, ties going to the earlier in order; or
 * CZ_IDENTITY when none is acceptable, or when the value names identity
 * itself with a weight above the best coding's (an identity it does not
 * name never beats a coding it asked for).
 */
enum cz_coding sl__cz_accept_choose(const struct cz_accept *a, const enum cz_coding *order,
                                    size_t n);

/*
 * Whether the media type of a Content-Type value (its parameters, any
 * whitespace and case ignored) matches one of the n types: exact
 * ("application/json"), "text/\*" or "*\/\*", in lower case as
 * sl__cz_type_check() leaves them.
 */
bool sl__cz_type_match(struct sl_str content_type, const char *const *types, size_t n);

/*
 * Check a configured media type and lower its case in place: "type/sub",
 * "type/\*" or "*\/\*", tokens only, no parameters. Returns NULL, or what is
 * wrong with it.
 */
const char *sl__cz_type_check(char *type);

/* Whether a comma-separated field value lists token (any case; each
 * element's parameters, after '=' or ';', are ignored): Cache-Control's
 * no-transform, Vary's accept-encoding or "*". */
bool sl__cz_list_has(struct sl_str value, const char *token);

#endif
