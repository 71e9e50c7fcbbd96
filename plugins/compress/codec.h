/*
 * compress plugin: one compressor stream, gzip (zlib) or brotli, behind one
 * small interface, so that the body filter and the unit test drive both
 * alike. No request and no I/O here: output goes to a callback.
 */
#ifndef SL_PLUGIN_COMPRESS_CODEC_H
#define SL_PLUGIN_COMPRESS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "negotiate.h"

/*
 * The request-independent limits: a gzip stream has a 32 KiB window
 * (windowBits 15) and memLevel 8, about 256 KiB of state; a brotli stream
 * a 64 KiB window (lgwin 16), about 1.7 MiB up to quality 8. Measured on
 * 1 MiB of JSON fed in 16 KiB pieces with a flush every 64 KiB: above
 * lgwin 16 the encoder switches to hash tables that grow with the quality
 * (2.6 MiB at quality 5 with lgwin 18, 9.8 MiB at 7, 34 MiB at 9) for
 * output no smaller, and slower. A body of known, smaller size gets the
 * smallest window that still covers it.
 */
#define CZ_GZIP_WBITS    15
#define CZ_GZIP_MEMLEVEL 8
#define CZ_BR_LGWIN      16

struct cz_stream;

/*
 * A new stream of coding c (CZ_BR or CZ_GZIP) at level (gzip 1-9, brotli
 * quality 0-11); size is the body's length when known, else 0. Owned by
 * the caller, freed with sl__cz_stream_free(). Aborts when out of memory,
 * as sl_malloc() does.
 */
struct cz_stream *sl__cz_stream_new(enum cz_coding c, int level, uint64_t size);
void sl__cz_stream_free(struct cz_stream *s);

/* Where output goes: 0, or -1 to stop (sl__cz_stream_feed returns -1). */
typedef int cz_out_fn(void *arg, const char *p, size_t n);

/*
 * Compress len bytes of p, handing out what the compressor makes through
 * out() a buffer of up to bufsize bytes at a time (buf is the caller's
 * scratch: nothing is kept in it between calls). flags as a body filter's
 * (sluice/req.h): SL_BODY_FLUSH also writes out everything given so far
 * (a sync flush: the client can decode it all), SL_BODY_END ends the
 * stream. Returns 0, or -1 when the compressor or out() failed; after END
 * or a failure the stream takes nothing more.
 */
int sl__cz_stream_feed(struct cz_stream *s, const char *p, size_t len, unsigned flags, char *buf,
                       size_t bufsize, cz_out_fn *out, void *arg);

/* The library versions, for sluice -V ("zlib 1.2.13, brotli 1.0.9"). */
const char *sl__cz_versions(void);

#endif
