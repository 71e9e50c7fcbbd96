/*
 * compress plugin: Accept-Encoding, media types and field lists (see
 * negotiate.h). Everything here reads borrowed bytes and keeps nothing.
 */
#include "negotiate.h"

#include <ctype.h>
#include <string.h>

const char *sl__cz_coding_name(enum cz_coding c)
{
    return c == CZ_BR ? "br" : c == CZ_GZIP ? "gzip" : "identity";
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.2 tchar. */
static bool tchar(char c)
{
    return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && ows(*p))
        p++;
    return p;
}

static const char *token_end(const char *p, const char *end)
{
    while (p < end && tchar(*p))
        p++;
    return p;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
 * thousandths; -1 when s is not one. */
static int qvalue(const char *s, size_t n)
{
    int v, scale = 100;

    if (n == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    v = (s[0] - '0') * 1000;
    if (n == 1)
        return v;
    if (s[1] != '.' || n > 5)
        return -1;
    for (size_t i = 2; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v += (s[i] - '0') * scale;
        scale /= 10;
    }
    return v > 1000 ? -1 : v;
}

/* The weight of one element's parameters ("; q=0.5"), 1000 when it has
 * none, -1 when they are not well formed or the weight is not a qvalue. */
static int weight(const char *p, const char *end)
{
    int q = 1000;

    for (p = skip_ows(p, end); p < end; p = skip_ows(p, end)) {
        const char *name, *name_end, *val;

        if (*p != ';')
            return -1;
        name = skip_ows(p + 1, end);
        name_end = token_end(name, end);
        p = skip_ows(name_end, end);
        if (name_end == name || p == end || *p != '=')
            return -1;
        val = skip_ows(p + 1, end);
        for (p = val; p < end && *p != ';' && !ows(*p); p++)
            ;
        if (name_end - name == 1 && (*name == 'q' || *name == 'Q') &&
            (q = qvalue(val, (size_t)(p - val))) < 0)
            return -1;
    }
    return q;
}

static void element(const char *p, const char *end, struct cz_accept *a)
{
    const char *name = skip_ows(p, end), *name_end = token_end(name, end);
    struct sl_str coding = {name, (size_t)(name_end - name)};
    int q, *slot;

    if (coding.len == 0)
        return; /* an empty element ("gzip,,br") or garbage */
    if (sl_str_caseeq_lit(coding, "gzip") || sl_str_caseeq_lit(coding, "x-gzip"))
        slot = &a->q[CZ_GZIP];
    else if (sl_str_caseeq_lit(coding, "br"))
        slot = &a->q[CZ_BR];
    else if (sl_str_caseeq_lit(coding, "identity"))
        slot = &a->identity;
    else if (sl_str_caseeq_lit(coding, "*"))
        slot = &a->star;
    else
        return;
    q = weight(name_end, end);
    if (q >= 0 && *slot < 0)
        *slot = q;
}

void sl__cz_accept_parse(struct sl_str value, struct cz_accept *out)
{
    const char *p = value.p, *end = value.p + value.len;

    for (int i = 0; i < CZ_CODINGS; i++)
        out->q[i] = -1;
    out->identity = out->star = -1;
    while (p != NULL && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;

        element(p, stop, out);
        p = comma ? comma + 1 : NULL;
    }
}

enum cz_coding sl__cz_accept_choose(const struct cz_accept *a, const enum cz_coding *order,
                                    size_t n)
{
    enum cz_coding best = CZ_IDENTITY;
    int best_q = 0;

    for (size_t i = 0; i < n; i++) {
        int q = a->q[order[i]] >= 0 ? a->q[order[i]] : a->star >= 0 ? a->star : 0;

        if (q > best_q) {
            best = order[i];
            best_q = q;
        }
    }
    return best != CZ_IDENTITY && a->identity > best_q ? CZ_IDENTITY : best;
}

bool sl__cz_type_match(struct sl_str content_type, const char *const *types, size_t n)
{
    const char *p, *end, *semi;
    struct sl_str mt;

    if (content_type.len == 0)
        return false;
    p = skip_ows(content_type.p, content_type.p + content_type.len);
    end = content_type.p + content_type.len;
    semi = memchr(p, ';', (size_t)(end - p));
    if (semi != NULL)
        end = semi;
    while (end > p && ows(end[-1]))
        end--;
    mt = (struct sl_str){p, (size_t)(end - p)};
    if (mt.len == 0 || memchr(mt.p, '/', mt.len) == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(types[i]);

        if (strcmp(types[i], "*/*") == 0)
            return true;
        if (len >= 2 && types[i][len - 1] == '*') { /* "text/\*": "text/" and a subtype */
            if (mt.len > len - 1 && strncasecmp(mt.p, types[i], len - 1) == 0)
                return true;
        } else if (sl_str_caseeq(mt, (struct sl_str){types[i], len})) {
            return true;
        }
    }
    return false;
}

const char *sl__cz_type_check(char *type)
{
    static const char *const shape = "expected a media type such as text/html, text/* or */*";
    char *slash = strchr(type, '/'), *sub;

    for (char *c = type; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (slash == NULL || slash == type || slash[1] == '\0')
        return shape;
    sub = slash + 1;
    for (char *c = type; *c; c++)
        if (c != slash && !tchar(*c))
            return "expected a media type without parameters or spaces, such as text/html";
    if ((memchr(type, '*', (size_t)(slash - type)) && (slash - type != 1 || strcmp(sub, "*"))) ||
        (strchr(sub, '*') && strcmp(sub, "*") != 0))
        return "a wildcard stands for a whole subtype (text/*) or for everything (*/*)";
    return NULL;
}

bool sl__cz_list_has(struct sl_str value, const char *token)
{
    const char *p = value.p, *end = value.p + value.len;
    struct sl_str want = sl_str_from(token);

    while (p != NULL && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *start = skip_ows(p, comma ? comma : end), *stop = start;

        while (stop < (comma ? comma : end) && *stop != '=' && *stop != ';' && !ows(*stop))
            stop++;
        if (sl_str_caseeq(want, (struct sl_str){start, (size_t)(stop - start)}))
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}
