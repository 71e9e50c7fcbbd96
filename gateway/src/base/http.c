/*
 * HTTP/1.1 message rules the proxy applies on both sides.
 */
#include "base/http.h"

#include <ctype.h>
#include <string.h>

bool sl__http_is_hop_by_hop(struct sl_str n)
{
    switch (n.len) {
    case 2:
        return sl_str_caseeq_lit(n, "TE");
    case 7:
        return sl_str_caseeq_lit(n, "Upgrade");
    case 10:
        return sl_str_caseeq_lit(n, "Connection") || sl_str_caseeq_lit(n, "Keep-Alive");
    case 16:
        return sl_str_caseeq_lit(n, "Proxy-Connection");
    case 17:
        return sl_str_caseeq_lit(n, "Transfer-Encoding");
    default:
        return false;
    }
}

bool sl__http_tokens(struct sl_str v, bool (*fn)(struct sl_str, void *), void *arg)
{
    size_t i = 0;

    while (i < v.len) {
        size_t start, end;

        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        start = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        end = i;
        while (end > start && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
            end--;
        if (end > start && fn((struct sl_str){v.p + start, end - start}, arg))
            return true;
    }
    return false;
}

static bool same_token(struct sl_str tok, void *arg)
{
    return sl_str_caseeq_lit(tok, arg);
}

bool sl__http_list_has(struct sl_str value, const char *token)
{
    return sl__http_tokens(value, same_token, (void *)token);
}

/* tchar of RFC 9110 5.6.2 */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

bool sl__http_valid_name(struct sl_str n)
{
    if (n.len == 0)
        return false;
    for (size_t i = 0; i < n.len; i++)
        if (!tchar[(unsigned char)n.p[i]])
            return false;
    return true;
}

bool sl__http_valid_value(struct sl_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

bool sl__http_valid_host(struct sl_str h)
{
    size_t i = 0;

    if (h.len == 0 || h.len > 255)
        return false;
    if (h.p[0] == '[') {
        for (i = 1; i < h.len && h.p[i] != ']'; i++)
            if (!(isxdigit((unsigned char)h.p[i]) || h.p[i] == ':' || h.p[i] == '.'))
                return false;
        if (i == h.len || i == 1)
            return false;
        i++;
    } else {
        for (; i < h.len && h.p[i] != ':'; i++) {
            unsigned char c = (unsigned char)h.p[i];

            if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%' ||
                  c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
                  c == '*' || c == '+' || c == ',' || c == ';' || c == '='))
                return false;
        }
        if (i == 0)
            return false;
    }
    if (i < h.len) {
        if (h.p[i] != ':' || i + 1 == h.len || h.len - i - 1 > 5)
            return false;
        for (i++; i < h.len; i++)
            if (!isdigit((unsigned char)h.p[i]))
                return false;
    }
    return true;
}

struct sl_str sl__http_host_key(struct sl_str host, char *out)
{
    size_t n = host.len;

    if (host.len > 0 && host.p[0] == '[') {
        const char *rb = memchr(host.p, ']', host.len);

        n = rb ? (size_t)(rb - host.p) + 1 : host.len;
    } else {
        const char *colon = memchr(host.p, ':', host.len);

        if (colon)
            n = (size_t)(colon - host.p);
    }
    while (n > 0 && host.p[n - 1] == '.') /* "example.com." is example.com */
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)host.p[i]);
    out[n] = '\0';
    return (struct sl_str){out, n};
}

/* Is in[i..] a segment "." or ".." (possibly as %2e), ending at '/' or the end? */
static size_t dots(const char *in, size_t len, size_t i, size_t *seglen)
{
    size_t n = 0, j = i;

    while (j < len && in[j] != '/') {
        if (in[j] == '.') {
            j++;
        } else if (j + 2 < len && in[j] == '%' && in[j + 1] == '2' &&
                   (in[j + 2] == 'e' || in[j + 2] == 'E')) {
            j += 3;
        } else {
            return 0;
        }
        if (++n > 2)
            return 0;
    }
    *seglen = j - i;
    return n;
}

long sl__http_normalize_path(const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;

    if (len == 0 || in[0] != '/')
        return -1;
    while (i < len) {
        size_t seglen, d;

        /* in[i] is '/': look at the segment after it. */
        d = dots(in, len, i + 1, &seglen);
        if (d == 1) {
            i += 1 + seglen;
            if (i == len)
                out[o++] = '/';
            continue;
        }
        if (d == 2) {
            if (o == 0)
                return -1; /* climbs above the root */
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* drop the previous segment with its slash */
            i += 1 + seglen;
            if (i == len)
                out[o++] = '/';
            continue;
        }
        out[o++] = in[i++];
        while (i < len && in[i] != '/')
            out[o++] = in[i++];
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return (long)o;
}

const char *sl__http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
