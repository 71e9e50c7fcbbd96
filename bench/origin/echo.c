/*
 * sluice-origin's routes that tell the client what it sent or what the
 * origin has seen: /echo streams the request body back as it arrives,
 * /headers and /sink answer with the request head or the body's size in
 * JSON, /stats with the counts of requests and connections.
 */
#include "echo.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <llhttp.h>

#include "origin.h"
#include "respond.h"

/* Length of the well-formed UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;

    if (s[0] < 0xc2 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return len;
}

/* UTF-8 passes through; other bytes (obs-text) are read as Latin-1, so
 * the result is always valid JSON. */
static void json_str(struct buf *b, const char *s, size_t n)
{
    buf_put(b, "\"", 1);
    for (size_t i = 0, k; i < n; i++) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\')
            buf_fmt(b, "\\%c", ch);
        else if (ch >= 0x80 && (k = utf8_len((const unsigned char *)s + i, n - i)))
            buf_put(b, s + i, k), i += k - 1;
        else if (ch < 0x20 || ch >= 0x7f)
            buf_fmt(b, "\\u%04x", ch);
        else
            buf_put(b, &ch, 1);
    }
    buf_put(b, "\"", 1);
}

/* Headers of the /echo response go out before the body arrives; the body
 * is forwarded piece by piece from on_body. */
void echo_start(struct conn *c)
{
    struct req *q = &c->req;
    struct resp *r = &c->resp;
    int status = q->status ? q->status : 200;
    bool chunked_req = c->parser.flags & F_CHUNKED;

    resp_reset(r);
    r->keep = q->keep;
    r->echo = r->active = true;
    r->discard = q->head || bodyless(status);
    r->chunked = (q->chunked || chunked_req) && !q->http10 && !r->discard;
    r->trailer = q->trailer && r->chunked;
    send_head(c, status, "application/octet-stream",
              chunked_req ? NO_LEN : c->parser.content_length);
}

/* The body is built whole: these are small, and prepare() hands it to the
 * response, which frees it when done. */
void echo_report(struct conn *c, struct buf *j)
{
    struct req *q = &c->req;

    switch (q->route) {
    case R_STATS:
        buf_fmt(j, "{\"requests\": %" PRIu64 ", \"connections\": %" PRIu64 "}\n",
                atomic_load(&nreq), atomic_load(&nconn));
        break;
    case R_SINK:
        buf_fmt(j, "{\"bytes\": %" PRIu64 "}\n", q->body);
        break;
    case R_HEADERS:
        buf_fmt(j, "{\"method\": ");
        json_str(j, llhttp_method_name(c->parser.method),
                 strlen(llhttp_method_name(c->parser.method)));
        buf_fmt(j, ", \"path\": ");
        json_str(j, c->head, c->url_len);
        buf_fmt(j, ", \"headers\": [");
        for (unsigned i = 0; i < c->nhdr; i++) {
            buf_fmt(j, "%s[", i ? ", " : "");
            json_str(j, c->head + c->hdr[i].name, c->hdr[i].nlen);
            buf_put(j, ",", 1);
            json_str(j, c->head + c->hdr[i].val, c->hdr[i].vlen);
            buf_put(j, "]", 1);
        }
        buf_fmt(j, "], \"body_bytes\": %" PRIu64 "}\n", q->body);
        break;
    default:
        break;
    }
}
