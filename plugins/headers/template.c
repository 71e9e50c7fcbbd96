/*
 * headers plugin: header names and value templates (see template.h).
 */
#include "template.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_SEGS 64

static const struct {
    const char *name;
    enum hdr_var var;
} vars[] = {
    {"client_ip", HV_CLIENT_IP}, {"request_id", HV_REQUEST_ID},
    {"route", HV_ROUTE},         {"consumer", HV_CONSUMER},
    {"host", HV_HOST},
};

#define KNOWN "$client_ip, $request_id, $route, $consumer, $host, $jwt.CLAIM"

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

bool sl__hdr_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static void ctl_name(unsigned char c, char *buf, size_t size)
{
    if (c == '\r')
        snprintf(buf, size, "CR");
    else if (c == '\n')
        snprintf(buf, size, "LF");
    else if (c == '\0')
        snprintf(buf, size, "NUL");
    else
        snprintf(buf, size, "\\x%02x", c);
}

/* The variable called name (len bytes), into *seg; false if none is. */
static bool lookup(struct sl_arena *a, const char *name, size_t len, struct hdr_seg *seg)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0) {
            *seg = (struct hdr_seg){vars[i].var, NULL, 0};
            return true;
        }
    }
    /* jwt.CLAIM (and jwt.CLAIM.MEMBER): the request variable jwt:CLAIM. */
    if (len > 4 && memcmp(name, "jwt.", 4) == 0) {
        char *v = sl_arena_printf(a, "jwt:%.*s", (int)(len - 4), name + 4);

        *seg = (struct hdr_seg){HV_JWT, v, strlen(v)};
        return true;
    }
    return false;
}

/* The length of a bare name at p (end at e): letters, digits, '_', and
 * after "jwt" a '.' followed by a name character (claims and members). */
static size_t bare_name(const char *p, const char *e)
{
    size_t n = 0;

    while (p + n < e && name_char(p[n]))
        n++;
    if (n == 3 && memcmp(p, "jwt", 3) == 0) {
        while (p + n + 1 < e && p[n] == '.' && name_char(p[n + 1])) {
            n++;
            while (p + n < e && name_char(p[n]))
                n++;
        }
    }
    return n;
}

/* Append the byte c to the text in buf (*n bytes so far): to the last
 * segment when it is that text's tail, else in a new one. */
static void literal(struct hdr_tmpl *t, char *buf, size_t *n, char c)
{
    struct hdr_seg *last = t->n > 0 ? &t->segs[t->n - 1] : NULL;

    if (last != NULL && last->var == HV_TEXT && last->text + last->len == buf + *n)
        last->len++;
    else
        t->segs[t->n++] = (struct hdr_seg){HV_TEXT, buf + *n, 1};
    buf[(*n)++] = c;
}

/* One variable at p ('$' followed by a name or '{'); its length in *used,
 * or -1 with why. */
static int variable(struct sl_arena *a, const char *p, const char *e, struct hdr_seg *seg,
                    size_t *used, char *why, size_t size)
{
    const char *name = p + 1;
    size_t len;

    if (*name == '{') {
        const char *close = memchr(name, '}', (size_t)(e - name));

        if (close == NULL) {
            snprintf(why, size, "\"${\" without its closing \"}\"");
            return -1;
        }
        name++;
        len = (size_t)(close - name);
        *used = len + 3;
    } else {
        len = bare_name(name, e);
        *used = len + 1;
    }
    if (len > 0 && lookup(a, name, len, seg))
        return 0;
    snprintf(why, size, "unknown variable \"$%.*s\" (known: " KNOWN "; $$ for a literal $)",
             (int)(len > 60 ? 60 : len), name);
    return -1;
}

/* The first control character of text but HTAB, as why; false if none. */
static bool has_ctl(const char *text, size_t len, char *why, size_t size)
{
    for (size_t i = 0; i < len; i++) {
        char c[8];

        if (!sl__hdr_ctl((unsigned char)text[i]))
            continue;
        ctl_name((unsigned char)text[i], c, sizeof(c));
        snprintf(why, size,
                 "a header value cannot hold %s (byte %zu): no control character but tab, so "
                 "that no value can end a line",
                 c, i + 1);
        return true;
    }
    return false;
}

int sl__hdr_tmpl_parse(struct sl_arena *a, const char *text, size_t len, struct hdr_tmpl *out,
                       char *why, size_t size)
{
    const char *e = text + len;
    struct hdr_tmpl t = {sl_arena_alloc(a, MAX_SEGS * sizeof(struct hdr_seg)), 0, NULL};
    char *buf = sl_arena_alloc(a, len + 1); /* the literal text, unescaped */
    size_t n = 0;
    bool vars_seen = false;

    if (has_ctl(text, len, why, size))
        return -1;
    for (const char *p = text; p < e;) {
        size_t used = 1;

        if (t.n + 1 >= MAX_SEGS) {
            snprintf(why, size, "more than %d variables and texts in one value", MAX_SEGS - 1);
            return -1;
        }
        if (p[0] == '$' && p + 1 < e && p[1] == '$') {
            literal(&t, buf, &n, '$');
            used = 2;
        } else if (p[0] == '$' && p + 1 < e && (p[1] == '{' || name_start(p[1]))) {
            if (variable(a, p, e, &t.segs[t.n], &used, why, size) != 0)
                return -1;
            t.n++;
            vars_seen = true;
        } else {
            literal(&t, buf, &n, *p);
        }
        p += used;
    }
    buf[n] = '\0';
    t.text = vars_seen ? NULL : buf;
    *out = t;
    return 0;
}

bool sl__hdr_name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return false;
    for (const char *p = name; *p; p++)
        if (!name_char(*p) && strchr("!#$%&'*+-.^`|~", *p) == NULL)
            return false;
    return true;
}

const char *sl__hdr_name_owned(const char *name, bool request)
{
    static const char *const framing[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                          "Keep-Alive",     "Proxy-Connection",  "TE",
                                          "Trailer",        "Upgrade",           NULL};
    static const char *const upstream[] = {"Host",
                                           "Expect",
                                           "X-Forwarded-For",
                                           "X-Forwarded-Host",
                                           "X-Forwarded-Proto",
                                           "X-Client-Cert-Subject",
                                           NULL};

    for (size_t i = 0; framing[i] != NULL; i++)
        if (strcasecmp(name, framing[i]) == 0)
            return "it frames the message or the connection, which the gateway does itself";
    if (strcasecmp(name, "Via") == 0)
        return "the gateway writes Via itself (the top-level via: sets or turns it off)";
    for (size_t i = 0; request && upstream[i] != NULL; i++)
        if (strcasecmp(name, upstream[i]) == 0)
            return "the gateway writes it itself on the way upstream";
    /* What other plugins tell the upstream: changed here, the upstream
     * would believe something the gateway did not check or log. */
    if (request && strcasecmp(name, "X-Consumer") == 0)
        return "the api_key plugin sets it to the consumer whose key it checked, and a "
               "value from here would pass for one";
    if (request && strcasecmp(name, "X-Request-Id") == 0)
        return "the request_id plugin sets it to the id the logs have, and the upstream "
               "would get another";
    return NULL;
}
