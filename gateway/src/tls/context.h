/*
 * TLS contexts from the config. Server contexts (one per certificate,
 * chosen by SNI) and client contexts belong to the config generation, so a
 * reload re-reads certificates and keys.
 */
#ifndef SL_TLS_CONTEXT_H
#define SL_TLS_CONTEXT_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "sluice/conf.h"

#include "tls/io.h"

struct sl_tls_server;
struct sl_tls_client;

/*
 * Read a listener's "tls:" map and build its contexts: certificates (SNI;
 * the first is the default), min_version, client_ca, session_resumption.
 * Errors (unreadable files, a key that does not match its certificate) go to
 * ctx; an expired certificate is a warning. Freed with the generation.
 * Returns NULL after errors.
 */
struct sl_tls_server *sl__tls_server_conf(struct sl_conf_ctx *ctx, const struct sl_node *node);

/* Read an upstream's "tls:" map: verify, ca, sni. NULL after errors. */
struct sl_tls_client *sl__tls_client_conf(struct sl_conf_ctx *ctx, const struct sl_node *node);

/*
 * A number unique to this client context (its CA, SNI and verification, in
 * this generation): part of the keep-alive pool key, so a pooled connection
 * or a resumable session is only used under the settings it was made with.
 */
uint64_t sl__tls_client_id(const struct sl_tls_client *c);

/* Start a server-side connection writing its ciphertext to out. 0 or -1. */
int sl__tls_accept(struct sl_tls *t, struct sl_tls_server *srv, struct sl_out *out,
                   struct sl_bufpool *pool);

/* Start a client-side connection to an upstream at ip (for certificate
 * checks when no sni is set); session may be NULL (else one to resume).
 * 0 or -1. */
int sl__tls_connect(struct sl_tls *t, struct sl_tls_client *cli, struct sl_out *out,
                    struct sl_bufpool *pool, SSL_SESSION *session, const char *ip);

#endif
