/*
 * TLS with OpenSSL 3 on libuv streams, for clients (termination) and for
 * upstreams. No OpenSSL call ever touches a socket: ciphertext read from the
 * socket is handed to OpenSSL through a BIO that reads from our buffer, and
 * ciphertext OpenSSL produces goes through a BIO that appends to the
 * connection's output (buf.h), which libuv writes. Nothing blocks the loop.
 *
 * Server contexts (one per certificate, chosen by SNI) and client contexts
 * belong to the config generation, so a reload re-reads certificates and
 * keys. Session ticket keys are shared by every worker and rotated.
 *
 * Three files: io (per connection), context (from the config), tickets. This
 * header is the layer's whole face, for the layers above.
 */
#ifndef SL_TLS_H
#define SL_TLS_H

#include "tls/context.h"
#include "tls/io.h"
#include "tls/tickets.h"

#endif
