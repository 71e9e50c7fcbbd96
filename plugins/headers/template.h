/*
 * headers plugin: header names and value templates, read once at config
 * time (no parsing per request).
 *
 * A value is literal text with request variables in it: $client_ip,
 * $request_id, $route, $consumer, $host and $jwt.CLAIM, also written
 * ${name} to set them off from what follows; $$ is a literal $, and so is
 * a $ before anything that cannot start a name. The template is what the
 * config loader leaves, after its own ${ENV} expansion (sluice.yaml(5)).
 */
#ifndef SL_PLUGIN_HEADERS_TEMPLATE_H
#define SL_PLUGIN_HEADERS_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/arena.h"

enum hdr_var {
    HV_TEXT, /* literal text, not a variable */
    HV_CLIENT_IP,
    HV_REQUEST_ID,
    HV_ROUTE,
    HV_CONSUMER,
    HV_HOST,
    HV_JWT, /* text is the request variable: "jwt:sub" */
};

struct hdr_seg {
    enum hdr_var var;
    const char *text; /* HV_TEXT: the text; HV_JWT: the variable's name */
    size_t len;
};

struct hdr_tmpl {
    struct hdr_seg *segs;
    size_t n;
    /* Without variables: the whole value, NUL-terminated; else NULL. */
    const char *text;
};

/*
 * Read len bytes of text into *out, in arena a (the generation's).
 * Returns 0, or -1 with why (at least 160 bytes) saying what is wrong:
 * a control character other than HTAB (CR, LF and NUL included), an
 * unknown variable, an unclosed ${.
 */
int sl__hdr_tmpl_parse(struct sl_arena *a, const char *text, size_t len, struct hdr_tmpl *out,
                       char *why, size_t size);

/* Whether c is a control character a field value must not hold: any but
 * HTAB (CR, LF and NUL among them). */
bool sl__hdr_ctl(unsigned char c);

/* Whether name is an RFC 9110 token (a valid field name). */
bool sl__hdr_name_valid(const char *name);

/* Why the gateway (or another plugin: X-Consumer, X-Request-Id) keeps
 * name to itself in the request (upstream) or the response: a sentence,
 * or NULL when headers may change it. */
const char *sl__hdr_name_owned(const char *name, bool request);

#endif
