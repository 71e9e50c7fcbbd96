/*
 * sluice-origin's WebSocket echo: the handshake of a GET /ws with an
 * Upgrade, then frames echoed as they stream in, so none is ever buffered.
 */
#include "ws.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "origin.h"
#include "respond.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- SHA-1 and base64, for the WebSocket handshake only -------------- */

static uint32_t rol(uint32_t x, int n)
{
    return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5a827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ed9eba1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
        else
            f = b ^ c ^ d, k = 0xca62c1d6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    size_t total = ((len + 8) / 64 + 1) * 64; /* message, 0x80, length */
    uint8_t block[64];

    for (size_t off = 0; off < total; off += 64) {
        for (size_t i = 0; i < 64; i++) {
            size_t k = off + i;
            block[i] = k < len ? msg[k] : k == len ? 0x80 : 0;
        }
        if (off + 64 == total)
            for (int i = 0; i < 8; i++)
                block[56 + i] = (uint8_t)((uint64_t)len * 8 >> (56 - 8 * i));
        sha1_block(h, block);
    }
    for (int i = 0; i < 20; i++)
        out[i] = h[i / 4] >> (24 - 8 * (i % 4));
}

static void base64(const uint8_t *s, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *out++ = tab[v >> 18 & 63];
        *out++ = tab[v >> 12 & 63];
        *out++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *out++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *out = '\0';
}

/* ---- WebSocket echo --------------------------------------------------- */

void ws_accept(struct conn *c)
{
    struct buf *h = &((struct worker *)c->tcp.loop->data)->scratch;
    const char *key;
    size_t n;
    char in[64 + sizeof WS_GUID], acc[32];
    uint8_t d[20];

    if (!find_hdr(c, "upgrade", &key, &n) || n != 9 || strncasecmp(key, "websocket", 9) ||
        !find_hdr(c, "sec-websocket-key", &key, &n) || n == 0 || n > 64) {
        reject(c);
        return;
    }
    memcpy(in, key, n);
    memcpy(in + n, WS_GUID, sizeof WS_GUID - 1);
    sha1((uint8_t *)in, n + sizeof WS_GUID - 1, d);
    base64(d, sizeof d, acc);

    h->len = 0;
    buf_fmt(h,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Origin: %s\r\n",
            acc, cfg.name);
    buf_put(h, c->xh.p, c->xh.len);
    buf_put(h, "\r\n", 2);
    uv_buf_t b = uv_buf_init(h->p, h->len);
    out(c, &b, 1, 0);
    c->ws = true;
}

static unsigned ws_need(const struct wsf *f)
{
    if (f->hlen < 2)
        return 2;
    unsigned len7 = f->h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (f->h[1] & 0x80 ? 4 : 0);
}

static void ws_end(struct conn *c)
{
    struct wsf *f = &c->wsf;

    f->payload = false;
    f->hlen = 0;
    if (f->op == 0x8)
        shut(c); /* the close frame has been echoed */
}

/* A frame header is complete: validate it and answer with our own, so the
 * payload can be forwarded as it streams in. */
static void ws_start(struct conn *c)
{
    struct wsf *f = &c->wsf;
    uint8_t *h = f->h, out_h[10];
    unsigned len7 = h[1] & 0x7f, op = h[0] & 0x0f, n = 2;
    uint64_t len = len7;

    if (len7 >= 126) {
        len = 0;
        for (unsigned i = 0; i < (len7 == 126 ? 2u : 8u); i++)
            len = len << 8 | h[2 + i];
    }
    bool bad = (h[0] & 0x70) || !(h[1] & 0x80) || (op > 2 && op < 8) || op > 10 ||
               (op >= 8 && (len > 125 || !(h[0] & 0x80))) || len >> 63;
    if (bad) {
        /* Protocol error: close with status 1002. */
        uv_buf_t b = uv_buf_init("\x88\x02\x03\xea", 4);
        out(c, &b, 1, 1);
        shut(c);
        return;
    }
    memcpy(f->mask, h + ws_need(f) - 4, 4);
    f->op = op;
    f->left = len;
    f->moff = 0;
    f->payload = true;
    f->fwd = op != 0xa; /* pongs are not answered */
    if (f->fwd) {
        out_h[0] = (h[0] & 0x80) | (op == 0x9 ? 0xa : op);
        if (len < 126) {
            out_h[1] = len;
        } else if (len < 65536) {
            out_h[1] = 126, out_h[2] = len >> 8, out_h[3] = len, n = 4;
        } else {
            out_h[1] = 127, n = 10;
            for (int i = 0; i < 8; i++)
                out_h[2 + i] = len >> (56 - 8 * i);
        }
        uv_buf_t b = uv_buf_init((char *)out_h, n);
        out(c, &b, 1, 0);
    }
    if (len == 0)
        ws_end(c);
}

/* Frames are echoed as they stream in, so no frame is ever buffered. */
void ws_feed(struct conn *c, char *p, size_t n)
{
    struct wsf *f = &c->wsf;

    while (n > 0 && !c->closing && !c->shutting) {
        if (!f->payload) {
            f->h[f->hlen++] = *p++;
            n--;
            if (f->hlen == ws_need(f))
                ws_start(c);
            continue;
        }
        size_t k = n < f->left ? n : f->left;
        for (size_t i = 0; i < k; i++)
            p[i] ^= f->mask[f->moff++ & 3];
        if (f->fwd) {
            uv_buf_t b = uv_buf_init(p, k);
            out(c, &b, 1, 0);
        }
        p += k, n -= k, f->left -= k;
        if (f->left == 0)
            ws_end(c);
    }
}
