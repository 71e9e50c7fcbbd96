/*
 * TLS session ticket keys: one key set for every worker and listener,
 * rotated every 12 hours on the main loop (the previous key still
 * decrypts), so a ticket from any worker resumes on any other.
 */
#include "tls/tickets.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#define TICKET_ROTATE_MS (12ull * 3600 * 1000)

/* -- session ticket keys -------------------------------------------------------- */

struct tkey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};

static struct tkey tkeys[2]; /* [0] issues and decrypts, [1] only decrypts */
static bool have_prev;
static uv_mutex_t tkey_lock;
static uv_once_t tkey_once = UV_ONCE_INIT;
static uv_timer_t tkey_timer;
static bool tkey_timer_on;

static void init_tkeys(void);

void sl__tls_tickets_init(void)
{
    uv_once(&tkey_once, init_tkeys);
}

static void init_tkeys(void)
{
    uv_mutex_init(&tkey_lock);
    RAND_bytes((unsigned char *)&tkeys[0], sizeof(tkeys[0]));
}

static void rotate(void)
{
    struct tkey k;

    RAND_bytes((unsigned char *)&k, sizeof(k));
    uv_mutex_lock(&tkey_lock);
    tkeys[1] = tkeys[0];
    tkeys[0] = k;
    have_prev = true;
    uv_mutex_unlock(&tkey_lock);
}

static void on_rotate(uv_timer_t *t)
{
    (void)t;
    rotate();
    sl_log(SL_LOG_INFO, NULL, "TLS session ticket key rotated");
}

void sl__tls_tickets_start(uv_loop_t *loop)
{
    uv_once(&tkey_once, init_tkeys);
    if (tkey_timer_on)
        return;
    uv_timer_init(loop, &tkey_timer);
    uv_timer_start(&tkey_timer, on_rotate, TICKET_ROTATE_MS, TICKET_ROTATE_MS);
    uv_unref((uv_handle_t *)&tkey_timer);
    tkey_timer_on = true;
}

void sl__tls_tickets_stop(void)
{
    if (tkey_timer_on) {
        uv_close((uv_handle_t *)&tkey_timer, NULL);
        tkey_timer_on = false;
    }
}

int sl__tls_ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *ectx,
                      EVP_MAC_CTX *hctx, int enc)
{
    struct tkey k;
    int rc = 1;
    OSSL_PARAM params[3];

    (void)s;
    uv_once(&tkey_once, init_tkeys);
    uv_mutex_lock(&tkey_lock);
    if (enc) {
        k = tkeys[0];
    } else if (memcmp(name, tkeys[0].name, 16) == 0) {
        k = tkeys[0];
    } else if (have_prev && memcmp(name, tkeys[1].name, 16) == 0) {
        k = tkeys[1];
        rc = 2; /* good, but issue a ticket under the current key */
    } else {
        uv_mutex_unlock(&tkey_lock);
        return 0; /* unknown key: a full handshake */
    }
    uv_mutex_unlock(&tkey_lock);
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        if (RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(name, k.name, 16);
        if (EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
            return -1;
    } else if (EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
        return -1;
    }
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}
