/*
 * TLS per connection, with OpenSSL 3 on libuv streams, for clients
 * (termination) and for upstreams. No OpenSSL call ever touches a socket:
 * ciphertext read from the socket is handed to OpenSSL through a BIO that
 * reads from our buffer, and ciphertext OpenSSL produces goes through a BIO
 * that appends to the connection's output (base/buf.h), which libuv
 * writes. Nothing blocks the loop.
 */
#ifndef SL_TLS_IO_H
#define SL_TLS_IO_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

/* One connection's TLS state. */
struct sl_tls {
    SSL *ssl;
    struct sl_bufpool *pool;
    struct sl_buf *raw; /* ciphertext from the socket; [raw_pos, raw->len) unread */
    uint32_t raw_pos;
    bool done;       /* handshake complete */
    bool closed;     /* close_notify received */
    bool failed;     /* a fatal error: OpenSSL may have left an alert to send, nothing more */
    char *subject;   /* verified client certificate subject (heap), or NULL */
    char error[160]; /* why the handshake or a read failed */
};

/* Tie a new SSL (taking it) to t: its ciphertext goes to out, buffers come
 * from pool. 0, or -1 (the SSL is freed). For tls/context.c. */
int sl__tls_attach(struct sl_tls *t, SSL *ssl, struct sl_out *out, struct sl_bufpool *pool);

/* Create our BIO methods (once; any thread). Before the first SSL_CTX. */
void sl__tls_bios_init(void);

/* The first OpenSSL error as text in buf, and the error queue cleared. */
const char *sl__tls_error(char *buf, size_t size);

void sl__tls_free(struct sl_tls *t);

/* Room for ciphertext from the socket (a libuv alloc callback's job). */
void sl__tls_alloc(struct sl_tls *t, uv_buf_t *buf);

/* Give the ciphertext buffer back to the pool when nothing is left in it
 * (an idle connection). */
void sl__tls_trim(struct sl_tls *t);

/* n bytes of ciphertext landed in the room given by sl__tls_alloc(). */
void sl__tls_received(struct sl_tls *t, size_t n);

/*
 * Advance the handshake. Returns 1 when complete, 0 when it needs more bytes
 * from the peer, -1 on failure (t->error says why, t->failed is set).
 * Ciphertext to send is left in the connection's output: flush it with
 * sl__out_flush_raw(). After a failure it usually ends with a fatal alert,
 * which RFC 8446 section 5 says must be sent before the close.
 */
int sl__tls_handshake(struct sl_tls *t);

/*
 * Decrypt into buf. Returns the bytes, 0 when more ciphertext is needed,
 * SL_TLS_EOF when the peer sent close_notify, or -1 on failure (a bad
 * record MAC, an oversized record, a bad KeyUpdate...: t->error says why and
 * t->failed is set). As with the handshake, a failure leaves a fatal alert in
 * the connection's output, to flush with sl__out_flush_raw() before closing.
 */
#define SL_TLS_EOF (-2)
int sl__tls_read(struct sl_tls *t, char *buf, size_t len);

/* Drop the ciphertext received and not yet given to OpenSSL (a connection
 * whose TLS failed reads only to discard, while its close lingers). */
void sl__tls_discard_input(struct sl_tls *t);

/* Whether input is waiting: ciphertext not yet given to OpenSSL, or
 * plaintext OpenSSL decrypted and we have not read yet. */
bool sl__tls_has_input(struct sl_tls *t);

/* A session to resume with this upstream connection later (a reference),
 * or NULL. */
SSL_SESSION *sl__tls_session(struct sl_tls *t);

#endif
