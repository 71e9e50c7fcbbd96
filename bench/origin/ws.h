/*
 * sluice-origin's WebSocket echo (/ws): the opening handshake, then every
 * frame echoed back as it streams in.
 */
#ifndef ORIGIN_WS_H
#define ORIGIN_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

/* WebSocket frame being echoed. */
struct wsf {
    uint8_t h[14], mask[4], op;
    unsigned hlen, moff;
    uint64_t left;
    bool payload, fwd;
};

/* The request on c asked for /ws with an Upgrade: answer 101 and switch c
 * to frames (c->ws), or reject a handshake that is not WebSocket's. */
void ws_accept(struct conn *c);

/* n bytes of frames from the client after the handshake: unmasked in place
 * and echoed as they come. */
void ws_feed(struct conn *c, char *p, size_t n);

#endif
