/*
 * TLS contexts from the config: a listener's certificates (SNI by the
 * certificates' names), versions, suites, ALPN, client certificates (mTLS)
 * and the session id context; an upstream's verification, CA and SNI.
 */
#include "tls/context.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "conf/conf_read.h"
#include "tls/io.h"
#include "tls/tickets.h"

/* TLS 1.2: forward secret AEAD suites only. TLS 1.3 suites are all AEAD. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

/* -- server contexts ----------------------------------------------------------- */

struct cert {
    SSL_CTX *ctx;
    char **names; /* lower case; "*.example.com" for wildcards */
    size_t n_names;
};

struct sl_tls_server {
    struct cert *certs; /* certs[0] is the default */
    size_t n;
};

static bool name_matches(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');

        /* One label only: *.example.com matches a.example.com. */
        return dot != NULL && dot != name && strcasecmp(dot, pattern + 1) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    struct sl_tls_server *srv = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void)alert;
    if (name == NULL || srv->n < 2)
        return SSL_TLSEXT_ERR_OK;
    /* Exact names first, then wildcards, in the order of the list. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < srv->n; i++)
            for (size_t k = 0; k < srv->certs[i].n_names; k++) {
                const char *p = srv->certs[i].names[k];

                if ((p[0] == '*') == (pass == 1) && name_matches(p, name)) {
                    if (i != 0)
                        SSL_set_SSL_CTX(ssl, srv->certs[i].ctx);
                    return SSL_TLSEXT_ERR_OK;
                }
            }
    return SSL_TLSEXT_ERR_OK; /* the default certificate */
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (in[i] == 8 && i + 9 <= inlen && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    /* Only h2 offered: go on without ALPN; the client may still speak 1.1. */
    return SSL_TLSEXT_ERR_NOACK;
}

static void add_name(struct cert *c, const char *s, size_t len)
{
    char *n = sl__xmalloc(len + 1);

    for (size_t i = 0; i < len; i++)
        n[i] = (char)tolower((unsigned char)s[i]);
    n[len] = '\0';
    c->names = sl__xrealloc(c->names, (c->n_names + 1) * sizeof(*c->names));
    c->names[c->n_names++] = n;
}

/* The DNS names of the certificate (subjectAltName, else the CN). */
static void cert_names(struct cert *c, X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

    if (sans != NULL) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

            if (g->type == GEN_DNS)
                add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                         (size_t)ASN1_STRING_length(g->d.dNSName));
        }
        GENERAL_NAMES_free(sans);
    }
    if (c->n_names == 0) {
        char cn[256];
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));

        if (n > 0)
            add_name(c, cn, (size_t)n);
    }
}

static void free_server(void *arg)
{
    struct sl_tls_server *srv = arg;

    for (size_t i = 0; i < srv->n; i++) {
        SSL_CTX_free(srv->certs[i].ctx);
        for (size_t k = 0; k < srv->certs[i].n_names; k++)
            free(srv->certs[i].names[k]);
        free(srv->certs[i].names);
    }
    free(srv->certs);
    free(srv);
}

struct server_opts {
    int min_version;
    const char *client_ca;
    bool resumption;
};

static SSL_CTX *server_ctx(struct sl_conf_ctx *ctx, const struct sl_node *item, const char *cert,
                           const char *key, const struct server_opts *o, struct cert *out)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    char err[256];
    X509 *x;

    if (c == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(c, o->min_version);
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                               SSL_OP_NO_RENEGOTIATION | SSL_OP_SINGLE_ECDH_USE);
    SSL_CTX_set_cipher_list(c, TLS12_CIPHERS);
    SSL_CTX_set1_groups_list(c, TLS_GROUPS);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(c, on_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
        sl_conf_error(ctx, sl_node_get(item, "cert"), "cannot load certificate %s: %s", cert,
                      sl__tls_error(err, sizeof(err)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
        sl_conf_error(ctx, sl_node_get(item, "key"), "cannot load private key %s: %s", key,
                      sl__tls_error(err, sizeof(err)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        ERR_clear_error();
        sl_conf_error(ctx, sl_node_get(item, "key"),
                      "the private key %s does not match the certificate %s", key, cert);
        goto fail;
    }
    x = SSL_CTX_get0_certificate(c);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        sl_conf_warn(ctx, sl_node_get(item, "cert"),
                     "the certificate %s has EXPIRED: clients will refuse it", cert);
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        sl_conf_warn(ctx, sl_node_get(item, "cert"), "the certificate %s is not valid yet", cert);
    cert_names(out, x);
    if (o->resumption) {
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(c, 32768);
        SSL_CTX_set_timeout(c, 12 * 3600);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(c, sl__tls_ticket_cb);
    } else {
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(c, 0);
    }
    if (o->client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca);

        if (names == NULL || SSL_CTX_load_verify_locations(c, o->client_ca, NULL) != 1) {
            if (names)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            sl_conf_error(ctx, item, "cannot load client_ca %s: %s", o->client_ca,
                          sl__tls_error(err, sizeof(err)));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(c, names);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_verify_depth(c, 8);
    }
    return c;

fail:
    SSL_CTX_free(c);
    return NULL;
}

/*
 * A session may only be resumed where it was made, under the same rules: the
 * session id context is a digest of the listener (its place in the file),
 * its certificates, its client CA file and its settings. Otherwise a session
 * from a listener without client_ca, or from before a reload that added it,
 * would let a client skip the certificate check (a resumed handshake asks
 * for no certificate). Every certificate context of one listener gets the
 * same value, so an SNI switch keeps sessions valid.
 */
static void set_session_context(struct sl_tls_server *srv, const struct server_opts *o,
                                const struct sl_node *node)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned int len = 0;

    if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h);
        return;
    }
    EVP_DigestUpdate(h, &node->line, sizeof(node->line));
    EVP_DigestUpdate(h, &node->col, sizeof(node->col));
    EVP_DigestUpdate(h, &o->min_version, sizeof(o->min_version));
    for (size_t i = 0; i < srv->n; i++) {
        unsigned char *der = NULL;
        int n = i2d_X509(SSL_CTX_get0_certificate(srv->certs[i].ctx), &der);

        if (n > 0)
            EVP_DigestUpdate(h, der, (size_t)n);
        OPENSSL_free(der);
    }
    if (o->client_ca != NULL) {
        FILE *f = fopen(o->client_ca, "rb");
        unsigned char buf[4096];
        size_t n;

        EVP_DigestUpdate(h, "mtls", 4);
        while (f != NULL && (n = fread(buf, 1, sizeof(buf), f)) > 0)
            EVP_DigestUpdate(h, buf, n);
        if (f != NULL)
            fclose(f);
    }
    EVP_DigestFinal_ex(h, md, &len);
    EVP_MD_CTX_free(h);
    /* SSL_MAX_SID_CTX_LENGTH is 32: the whole SHA-256 fits. */
    for (size_t i = 0; i < srv->n; i++)
        SSL_CTX_set_session_id_context(srv->certs[i].ctx, md,
                                       len > SSL_MAX_SID_CTX_LENGTH ? SSL_MAX_SID_CTX_LENGTH : len);
}

struct sl_tls_server *sl__tls_server_conf(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"certificates", "min_version", "client_ca",
                                       "session_resumption", NULL};
    static const char *const ckeys[] = {"cert", "key", NULL};
    static const char *const versions[] = {"1.2", "1.3", NULL};
    const struct sl_node *certs;
    struct server_opts o = {TLS1_2_VERSION, NULL, true};
    struct sl_tls_server *srv;
    int errors = sl_conf_errors(ctx), v;

    sl__tls_tickets_init();
    sl__tls_bios_init();
    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    if (sl_conf_enum(ctx, node, "min_version", versions, &v, false) == 0)
        o.min_version = v == 1 ? TLS1_3_VERSION : TLS1_2_VERSION;
    sl_conf_str(ctx, node, "client_ca", &o.client_ca, false);
    sl_conf_bool(ctx, node, "session_resumption", &o.resumption, false);
    certs = sl_node_get(node, "certificates");
    if (certs == NULL) {
        sl_conf_error(ctx, node, "certificates: at least one {cert, key} pair is required");
        return NULL;
    }
    if (certs->type != SL_NODE_SEQ || certs->n == 0) {
        sl_conf_error(ctx, certs, "expected a list such as - {cert: a.crt, key: a.key}");
        return NULL;
    }
    srv = sl__xcalloc(1, sizeof(*srv));
    srv->certs = sl__xcalloc(certs->n, sizeof(*srv->certs));
    for (size_t i = 0; i < certs->n; i++) {
        const struct sl_node *item = certs->items[i];
        const char *cert, *key;
        struct cert *c = &srv->certs[srv->n];

        if (sl_conf_keys(ctx, item, ckeys) != 0 && item->type != SL_NODE_MAP)
            continue;
        if (sl_conf_str(ctx, item, "cert", &cert, true) != 0 ||
            sl_conf_str(ctx, item, "key", &key, true) != 0)
            continue;
        c->ctx = server_ctx(ctx, item, cert, key, &o, c);
        if (c->ctx != NULL)
            srv->n++;
    }
    if (srv->n > 0) {
        SSL_CTX_set_tlsext_servername_callback(srv->certs[0].ctx, on_servername);
        SSL_CTX_set_tlsext_servername_arg(srv->certs[0].ctx, srv);
        set_session_context(srv, &o, node);
    }
    sl__conf_on_free(ctx, free_server, srv);
    return sl_conf_errors(ctx) == errors && srv->n > 0 ? srv : NULL;
}

/* -- client contexts -------------------------------------------------------------- */

struct sl_tls_client {
    uint64_t id; /* unique per context: pooled connections never cross contexts */
    SSL_CTX *ctx;
    const char *sni; /* NULL: no SNI; verification then checks the target IP */
    bool verify;
};

static void free_client(void *arg)
{
    struct sl_tls_client *c = arg;

    SSL_CTX_free(c->ctx);
    free(c);
}

struct sl_tls_client *sl__tls_client_conf(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"verify", "ca", "sni", NULL};
    static const unsigned char alpn[] = "\x08http/1.1";
    struct sl_tls_client *c;
    const char *ca = NULL;
    char err[256];
    int errors = sl_conf_errors(ctx);

    static atomic_ullong next_id;

    sl__tls_bios_init();
    c = sl__xcalloc(1, sizeof(*c));
    c->id = atomic_fetch_add(&next_id, 1) + 1;
    c->verify = true;
    if (node->type != SL_NODE_NULL &&
        !(node->type == SL_NODE_SCALAR && !node->quoted &&
          (strcmp(node->text, "on") == 0 || strcmp(node->text, "true") == 0))) {
        if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP) {
            free(c);
            return NULL;
        }
        sl_conf_bool(ctx, node, "verify", &c->verify, false);
        sl_conf_str(ctx, node, "ca", &ca, false);
        sl_conf_str(ctx, node, "sni", &c->sni, false);
    }
    c->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(c->ctx, TLS12_CIPHERS);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof(alpn) - 1);
    SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    if (c->verify) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        if (ca != NULL ? SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1
                       : SSL_CTX_set_default_verify_paths(c->ctx) != 1)
            sl_conf_error(ctx, ca ? sl_node_get(node, "ca") : node, "cannot load CA %s: %s",
                          ca ? ca : "(system default)", sl__tls_error(err, sizeof(err)));
    }
    sl__conf_on_free(ctx, free_client, c);
    return sl_conf_errors(ctx) == errors ? c : NULL;
}

uint64_t sl__tls_client_id(const struct sl_tls_client *c)
{
    return c->id;
}

/* -- connections ---------------------------------------------------------------- */

int sl__tls_accept(struct sl_tls *t, struct sl_tls_server *srv, struct sl_out *out,
                   struct sl_bufpool *pool)
{
    if (sl__tls_attach(t, SSL_new(srv->certs[0].ctx), out, pool) != 0)
        return -1;
    SSL_set_accept_state(t->ssl);
    return 0;
}

int sl__tls_connect(struct sl_tls *t, struct sl_tls_client *cli, struct sl_out *out,
                    struct sl_bufpool *pool, SSL_SESSION *session, const char *ip)
{
    if (sl__tls_attach(t, SSL_new(cli->ctx), out, pool) != 0)
        return -1;
    SSL_set_connect_state(t->ssl);
    if (cli->sni != NULL) {
        SSL_set_tlsext_host_name(t->ssl, cli->sni);
        if (cli->verify)
            SSL_set1_host(t->ssl, cli->sni);
    } else if (cli->verify && ip != NULL) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ip);
    }
    if (session != NULL)
        SSL_set_session(t->ssl, session);
    return 0;
}
