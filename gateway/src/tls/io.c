/*
 * TLS per connection: OpenSSL driven through BIOs over our own buffers (the
 * ciphertext read from the socket is fed in without a copy; what OpenSSL
 * writes lands in the connection's write queue), handshakes, reads, and
 * what a failure leaves to send (its alert).
 */
#include "tls/io.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* -- BIOs over our buffers ---------------------------------------------------- */

static BIO_METHOD *out_method, *in_method;
static uv_once_t bio_once = UV_ONCE_INIT;

static int out_write(BIO *b, const char *data, int len)
{
    struct sl_out *o = BIO_get_data(b);

    if (len > 0)
        sl__out_raw(o, data, (size_t)len);
    return len;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int in_read(BIO *b, char *buf, int len)
{
    struct sl_tls *t = BIO_get_data(b);
    uint32_t avail = t->raw ? t->raw->len - t->raw_pos : 0;
    uint32_t n = (uint32_t)len < avail ? (uint32_t)len : avail;

    BIO_clear_retry_flags(b);
    if (n == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    memcpy(buf, t->raw->data + t->raw_pos, n);
    t->raw_pos += n;
    return (int)n;
}

static long in_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct sl_tls *t = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_PENDING:
        return t->raw ? (long)(t->raw->len - t->raw_pos) : 0;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void init_bios(void);

void sl__tls_bios_init(void)
{
    uv_once(&bio_once, init_bios);
}

static void init_bios(void)
{
    out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice-out");
    BIO_meth_set_write(out_method, out_write);
    BIO_meth_set_ctrl(out_method, out_ctrl);
    BIO_meth_set_create(out_method, bio_create);
    in_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice-in");
    BIO_meth_set_read(in_method, in_read);
    BIO_meth_set_ctrl(in_method, in_ctrl);
    BIO_meth_set_create(in_method, bio_create);
}

/* OpenSSL error e as text, and the error queue cleared. */
static const char *error_text(unsigned long e, char *buf, size_t size)
{
    if (e == 0)
        snprintf(buf, size, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

const char *sl__tls_error(char *buf, size_t size)
{
    return error_text(ERR_peek_error(), buf, size);
}

/* The last one: for a record that failed, what the TLS layer said when it
 * chose its alert ("decryption failed or bad record mac") comes after what
 * the cipher underneath said ("cipher operation failed"). */
static const char *record_error(char *buf, size_t size)
{
    return error_text(ERR_peek_last_error(), buf, size);
}

/* -- connections ---------------------------------------------------------------- */

int sl__tls_attach(struct sl_tls *t, SSL *ssl, struct sl_out *out, struct sl_bufpool *pool)
{
    BIO *rb, *wb;

    uv_once(&bio_once, init_bios);
    memset(t, 0, sizeof(*t));
    if (ssl == NULL)
        return -1;
    t->ssl = ssl;
    t->pool = pool;
    rb = BIO_new(in_method);
    wb = BIO_new(out_method);
    if (rb == NULL || wb == NULL) {
        BIO_free(rb);
        BIO_free(wb);
        SSL_free(ssl);
        t->ssl = NULL;
        return -1;
    }
    BIO_set_data(rb, t);
    BIO_set_data(wb, out);
    SSL_set_bio(ssl, rb, wb);
    out->tls = ssl;
    return 0;
}

void sl__tls_free(struct sl_tls *t)
{
    if (t->ssl != NULL) {
        /* A connection that ended without a TLS error keeps its session
         * resumable: without this, SSL_free() drops it from the cache
         * because no close_notify was exchanged (as nginx does). */
        if (t->done && t->error[0] == '\0')
            SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(t->ssl);
    }
    if (t->raw != NULL)
        sl__buf_unref(t->raw);
    free(t->subject);
    memset(t, 0, sizeof(*t));
}

void sl__tls_alloc(struct sl_tls *t, uv_buf_t *buf)
{
    *buf = sl__buf_room(t->pool, &t->raw, &t->raw_pos, 4096);
}

void sl__tls_trim(struct sl_tls *t)
{
    if (t->raw != NULL && t->raw_pos == t->raw->len) {
        sl__buf_unref(t->raw);
        t->raw = NULL;
        t->raw_pos = 0;
    }
}

void sl__tls_received(struct sl_tls *t, size_t n)
{
    t->raw->len += (uint32_t)n;
}

static void client_subject(struct sl_tls *t)
{
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    BIO *m;
    char *p;
    long n;

    if (peer == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return;
    m = BIO_new(BIO_s_mem());
    if (m == NULL)
        return;
    X509_NAME_print_ex(m, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
    n = BIO_get_mem_data(m, &p);
    if (n > 0) {
        t->subject = sl__xmalloc((size_t)n + 1);
        memcpy(t->subject, p, (size_t)n);
        t->subject[n] = '\0';
    }
    BIO_free(m);
}

int sl__tls_handshake(struct sl_tls *t)
{
    int r = SSL_do_handshake(t->ssl);

    if (r == 1) {
        t->done = true;
        if (SSL_is_server(t->ssl))
            client_subject(t);
        return 1;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default: {
        long v = SSL_get_verify_result(t->ssl);

        if (v != X509_V_OK && !SSL_is_server(t->ssl)) {
            snprintf(t->error, sizeof(t->error), "certificate verification failed: %s",
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            sl__tls_error(t->error, sizeof(t->error));
        }
        t->failed = true;
        return -1;
    }
    }
}

int sl__tls_read(struct sl_tls *t, char *buf, size_t len)
{
    int r = SSL_read(t->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));

    if (r > 0)
        return r;
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        t->closed = true;
        return SL_TLS_EOF;
    default:
        record_error(t->error, sizeof(t->error));
        t->failed = true;
        return -1;
    }
}

void sl__tls_discard_input(struct sl_tls *t)
{
    if (t->raw != NULL)
        t->raw_pos = t->raw->len;
}

bool sl__tls_has_input(struct sl_tls *t)
{
    return (t->raw != NULL && t->raw_pos < t->raw->len) ||
           (t->ssl != NULL && SSL_pending(t->ssl) > 0);
}

SSL_SESSION *sl__tls_session(struct sl_tls *t)
{
    return t->ssl != NULL ? SSL_get1_session(t->ssl) : NULL;
}
