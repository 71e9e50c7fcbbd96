/*
 * compress plugin: gzip through zlib's deflate, brotli through libbrotlienc,
 * streamed through a caller's fixed buffer (see codec.h). The libraries
 * allocate through sl_malloc(), so running out of memory ends the process
 * with a message naming the plugin, as everywhere else in sluice.
 */
#include "codec.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <brotli/encode.h>
#include <zlib.h>

#include "sluice/alloc.h"
#include "sluice/req.h"

struct cz_stream {
    enum cz_coding coding;
    bool pending; /* brotli: input taken since the last flush */
    bool ended;   /* END reached or a failure: nothing more is taken */
    union {
        z_stream z;
        BrotliEncoderState *br;
    } u;
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return sl_malloc((size_t)items * size, "the compress plugin's gzip state");
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

static void *br_alloc(void *opaque, size_t size)
{
    (void)opaque;
    return sl_malloc(size, "the compress plugin's brotli state");
}

static void br_free(void *opaque, void *p)
{
    (void)opaque;
    free(p);
}

/* The smallest window of at least min_bits that covers size bytes plus
 * slack, or max_bits; size 0 (unknown) gets max_bits. */
static int window_bits(uint64_t size, uint64_t slack, int min_bits, int max_bits)
{
    int bits = min_bits;

    if (size == 0)
        return max_bits;
    while (bits < max_bits && (1ull << bits) < size + slack)
        bits++;
    return bits;
}

struct cz_stream *sl__cz_stream_new(enum cz_coding c, int level, uint64_t size)
{
    struct cz_stream *s = sl_calloc(1, sizeof(*s), "the compress plugin's stream");

    s->coding = c;
    if (c == CZ_GZIP) {
        /* deflate finds matches up to the window less 262 bytes back. */
        int wbits = window_bits(size, 262, 9, CZ_GZIP_WBITS);

        s->u.z.zalloc = z_alloc;
        s->u.z.zfree = z_free;
        if (deflateInit2(&s->u.z, level, Z_DEFLATED, wbits + 16, CZ_GZIP_MEMLEVEL,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            fprintf(stderr, "sluice: the compress plugin cannot start a gzip stream\n");
            abort(); /* only a bad level or out of memory, and neither can happen */
        }
        return s;
    }
    s->u.br = BrotliEncoderCreateInstance(br_alloc, br_free, NULL);
    BrotliEncoderSetParameter(s->u.br, BROTLI_PARAM_QUALITY, (uint32_t)level);
    /* A brotli window holds 2^lgwin - 16 bytes. */
    BrotliEncoderSetParameter(s->u.br, BROTLI_PARAM_LGWIN,
                              (uint32_t)window_bits(size, 16, BROTLI_MIN_WINDOW_BITS, CZ_BR_LGWIN));
    if (size != 0)
        BrotliEncoderSetParameter(s->u.br, BROTLI_PARAM_SIZE_HINT,
                                  size < (1u << 30) ? (uint32_t)size : 1u << 30);
    return s;
}

void sl__cz_stream_free(struct cz_stream *s)
{
    if (s == NULL)
        return;
    if (s->coding == CZ_GZIP)
        deflateEnd(&s->u.z);
    else
        BrotliEncoderDestroyInstance(s->u.br);
    free(s);
}

/* deflate() until it has taken all of p (and, flushing, written it all
 * out): it stops when its output is full, so a full buffer means more. */
static int gzip_feed(struct cz_stream *s, const char *p, size_t len, unsigned flags, char *buf,
                     size_t bufsize, cz_out_fn *out, void *arg)
{
    z_stream *z = &s->u.z;
    int flush = flags & SL_BODY_END ? Z_FINISH : flags & SL_BODY_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH;

    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)len;
    for (;;) {
        int rc;
        size_t n;

        z->next_out = (Bytef *)buf;
        z->avail_out = (uInt)bufsize;
        rc = deflate(z, flush);
        n = bufsize - z->avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return -1;
        if (n > 0 && out(arg, buf, n) != 0)
            return -1;
        if (rc == Z_STREAM_END)
            return 0;
        /* Z_BUF_ERROR with room left: nothing to do (a repeated flush). */
        if (z->avail_out != 0 && (flush != Z_FINISH || rc == Z_BUF_ERROR))
            return flush == Z_FINISH ? -1 : 0;
    }
}

static int br_feed(struct cz_stream *s, const char *p, size_t len, unsigned flags, char *buf,
                   size_t bufsize, cz_out_fn *out, void *arg)
{
    BrotliEncoderOperation op = BROTLI_OPERATION_PROCESS;
    const uint8_t *next_in = (const uint8_t *)p;
    size_t avail_in = len;

    if (flags & SL_BODY_END)
        op = BROTLI_OPERATION_FINISH;
    else if ((flags & SL_BODY_FLUSH) && (s->pending || len > 0))
        op = BROTLI_OPERATION_FLUSH; /* a flush with nothing new would add an empty block */
    for (;;) {
        uint8_t *next_out = (uint8_t *)buf;
        size_t avail_out = bufsize, n;

        if (!BrotliEncoderCompressStream(s->u.br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL))
            return -1;
        n = bufsize - avail_out;
        if (n > 0 && out(arg, buf, n) != 0)
            return -1;
        if (op == BROTLI_OPERATION_FINISH ? BrotliEncoderIsFinished(s->u.br)
                                          : avail_in == 0 && !BrotliEncoderHasMoreOutput(s->u.br))
            break;
    }
    s->pending = op == BROTLI_OPERATION_PROCESS && (s->pending || len > 0);
    return 0;
}

int sl__cz_stream_feed(struct cz_stream *s, const char *p, size_t len, unsigned flags, char *buf,
                       size_t bufsize, cz_out_fn *out, void *arg)
{
    int rc = 0;

    if (s->ended)
        return -1;
    /* zlib counts in uInt: hand it a huge piece in slices. */
    while (rc == 0 && s->coding == CZ_GZIP && len > UINT_MAX) {
        rc = gzip_feed(s, p, UINT_MAX, 0, buf, bufsize, out, arg);
        p += UINT_MAX;
        len -= UINT_MAX;
    }
    if (rc == 0)
        rc = s->coding == CZ_GZIP ? gzip_feed(s, p, len, flags, buf, bufsize, out, arg)
                                  : br_feed(s, p, len, flags, buf, bufsize, out, arg);
    if (rc != 0 || (flags & SL_BODY_END))
        s->ended = true;
    return rc;
}

const char *sl__cz_versions(void)
{
    static char v[64];
    uint32_t b = BrotliEncoderVersion();

    snprintf(v, sizeof(v), "zlib %s, brotli %u.%u.%u", zlibVersion(), (unsigned)(b >> 24),
             (unsigned)((b >> 12) & 0xfff), (unsigned)(b & 0xfff));
    return v;
}
