/*
 * TLS session ticket keys, shared by every worker and listener.
 */
#ifndef SL_TLS_TICKETS_H
#define SL_TLS_TICKETS_H

#include <openssl/ssl.h>
#include <uv.h>

/* Create the ticket keys, and rotate them every 12 hours on loop (the main
 * loop). The previous key still decrypts until the next rotation. */
void sl__tls_tickets_start(uv_loop_t *loop);
void sl__tls_tickets_stop(void);

/* Create the first keys (once; any thread). Before the first server context. */
void sl__tls_tickets_init(void);

/* The ticket key callback a server context installs
 * (SSL_CTX_set_tlsext_ticket_key_evp_cb). */
int sl__tls_ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *ectx,
                      EVP_MAC_CTX *hctx, int enc);

#endif
