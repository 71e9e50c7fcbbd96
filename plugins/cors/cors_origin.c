/*
 * cors plugin: origins, as the config lists them and as browsers send them
 * (RFC 6454: scheme "://" host [":" port], nothing after). Pure functions,
 * unit-tested in test_cors.c.
 */
#include "cors.h"

#include <ctype.h>
#include <string.h>

struct parts {
    struct sl_str scheme, host, port; /* port with its ':', or empty */
};

static bool scheme_ok(struct sl_str s)
{
    if (s.len == 0 || !isalpha((unsigned char)s.p[0]))
        return false;
    for (size_t i = 1; i < s.len; i++)
        if (!isalnum((unsigned char)s.p[i]) && s.p[i] != '+' && s.p[i] != '-' && s.p[i] != '.')
            return false;
    return true;
}

/* A DNS name or an IPv4 address: labels of [A-Za-z0-9-] between single dots. */
static bool hostname_ok(struct sl_str h)
{
    if (h.len == 0 || h.p[0] == '.' || h.p[h.len - 1] == '.')
        return false;
    for (size_t i = 0; i < h.len; i++) {
        char c = h.p[i];

        if (c == '.' ? h.p[i + 1] == '.' : !(isalnum((unsigned char)c) || c == '-'))
            return false;
    }
    return true;
}

static bool ipv6_ok(struct sl_str h)
{
    if (h.len < 4 || h.p[0] != '[' || h.p[h.len - 1] != ']')
        return false;
    for (size_t i = 1; i + 1 < h.len; i++)
        if (!isxdigit((unsigned char)h.p[i]) && h.p[i] != ':' && h.p[i] != '.')
            return false;
    return true;
}

/* ":1" to ":65535", without leading zeros, or empty. */
static bool port_ok(struct sl_str p)
{
    unsigned long v = 0;

    if (p.len == 0)
        return true;
    if (p.len < 2 || p.len > 6 || p.p[1] == '0')
        return false;
    for (size_t i = 1; i < p.len; i++) {
        if (!isdigit((unsigned char)p.p[i]))
            return false;
        v = v * 10 + (unsigned long)(p.p[i] - '0');
    }
    return v <= 65535;
}

/* Split "scheme://host[:port]" (scheme optional when may_omit_scheme),
 * checking the scheme and the port; the host is the caller's to check. */
static int split(struct sl_str s, bool may_omit_scheme, struct parts *p, const char **why)
{
    const char *sep = memmem(s.p, s.len, "://", 3);
    struct sl_str rest = s;
    const char *colon;

    *p = (struct parts){SL_STR_NULL, SL_STR_NULL, SL_STR("")};
    if (sep != NULL) {
        p->scheme = (struct sl_str){s.p, (size_t)(sep - s.p)};
        rest = (struct sl_str){sep + 3, s.len - p->scheme.len - 3};
        if (!scheme_ok(p->scheme))
            return *why = "expected a scheme such as https before ://", -1;
    } else if (!may_omit_scheme) {
        return *why = "expected SCHEME://HOST[:PORT], *.DOMAIN or *", -1;
    }
    if (memchr(rest.p, '/', rest.len) != NULL || memchr(rest.p, '?', rest.len) != NULL ||
        memchr(rest.p, '#', rest.len) != NULL)
        return *why = "an origin has no path, not even a trailing /", -1;
    /* The port follows the last ':' unless that is inside [v6]. */
    colon = memrchr(rest.p, ':', rest.len);
    if (colon != NULL && memchr(colon, ']', rest.len - (size_t)(colon - rest.p)) == NULL) {
        p->port = (struct sl_str){colon, rest.len - (size_t)(colon - rest.p)};
        rest.len -= p->port.len;
    }
    p->host = rest;
    if (!port_ok(p->port))
        return *why = "expected a port from 1 to 65535 after the host", -1;
    return 0;
}

static bool is_default_port(struct sl_str scheme, struct sl_str port)
{
    return (sl_str_caseeq_lit(scheme, "http") && sl_str_eq(port, SL_STR(":80"))) ||
           (sl_str_caseeq_lit(scheme, "https") && sl_str_eq(port, SL_STR(":443")));
}

int sl__cors_origin_parse(const char *text, struct cors_origin *o, const char **why)
{
    struct sl_str s = sl_str_from(text);
    struct parts p;

    *o = (struct cors_origin){.text = text};
    if (split(s, true, &p, why) != 0)
        return -1;
    if (p.host.len >= 2 && p.host.p[0] == '*' && p.host.p[1] == '.') {
        o->pattern = true;
        /* Without a scheme, https only: a page sent in plain http can be
         * anyone's on its network path (http:// is written out). */
        o->scheme = p.scheme.p != NULL ? p.scheme : SL_STR("https");
        o->suffix = (struct sl_str){p.host.p + 1, p.host.len - 1};
        o->port = p.port;
        if (!hostname_ok((struct sl_str){o->suffix.p + 1, o->suffix.len - 1}))
            return *why = "expected a domain name after *.", -1;
    } else if (p.scheme.p == NULL) {
        return *why = "expected SCHEME://HOST[:PORT], *.DOMAIN or *", -1;
    } else if (!hostname_ok(p.host) && !ipv6_ok(p.host)) {
        return *why = memchr(p.host.p, '*', p.host.len) != NULL
                          ? "a wildcard is only allowed as a whole first label: *.example.org"
                          : "expected a host name or address after ://",
               -1;
    }
    if (p.scheme.p != NULL && is_default_port(p.scheme, p.port))
        return *why = "browsers never send the scheme's default port: leave it out", -1;
    return 0;
}

/* A loopback host, whose pages no one on a network can change: localhost,
 * *.localhost, 127.0.0.0/8 and [::1]. */
static bool loopback(struct sl_str h)
{
    static const char v4[] = "127.";

    if (sl_str_caseeq_lit(h, "localhost") || sl_str_eq(h, SL_STR("[::1]")))
        return true;
    if (h.len > 10 && sl_str_caseeq((struct sl_str){h.p + h.len - 10, 10}, SL_STR(".localhost")))
        return true;
    if (h.len < sizeof(v4) || memcmp(h.p, v4, sizeof(v4) - 1) != 0)
        return false;
    for (size_t i = 0; i < h.len; i++)
        if (!isdigit((unsigned char)h.p[i]) && h.p[i] != '.')
            return false;
    return true;
}

bool sl__cors_origin_plaintext(const struct cors_origin *o)
{
    struct parts p;
    const char *why;

    if (split(sl_str_from(o->text), true, &p, &why) != 0)
        return false;
    if (o->pattern)
        return sl_str_caseeq_lit(o->scheme, "http");
    return sl_str_caseeq_lit(p.scheme, "http") && !loopback(p.host);
}

static bool suffix_caseeq(struct sl_str s, struct sl_str suffix)
{
    return s.len > suffix.len &&
           sl_str_caseeq((struct sl_str){s.p + s.len - suffix.len, suffix.len}, suffix);
}

bool sl__cors_origin_allowed(const struct cors_origin *list, size_t n, struct sl_str origin)
{
    struct parts p;
    const char *why;

    if (origin.p == NULL || split(origin, false, &p, &why) != 0 || !hostname_ok(p.host))
        p.host = SL_STR_NULL; /* matches no pattern; exact origins are compared whole */
    for (size_t i = 0; i < n; i++) {
        const struct cors_origin *o = &list[i];

        if (!o->pattern) {
            if (origin.p != NULL && sl_str_caseeq(origin, sl_str_from(o->text)))
                return true;
            continue;
        }
        /* The subdomain part is a valid host name ending before a dot:
         * "https://.example.org" and "https://evilexample.org" are not. */
        if (p.host.p != NULL && suffix_caseeq(p.host, o->suffix) &&
            (o->scheme.p == NULL || sl_str_caseeq(p.scheme, o->scheme)) &&
            sl_str_eq(p.port, o->port))
            return true;
    }
    return false;
}

bool sl__cors_is_token(struct sl_str s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];

        if (!(c < 0x80 && (isalnum(c) || (c != '\0' && strchr(extra, c) != NULL))))
            return false;
    }
    return true;
}
