/*
 * Addresses as text and address blocks (CIDR), with no I/O.
 */
#ifndef SL_ADDR_H
#define SL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address block: 10.0.0.0/8, 2001:db8::/32, or one address. */
struct sl_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint8_t prefix;
};

/* Parse "10.0.0.0/8", "::1" (a single address is a full-length block).
 * Returns 0, or -1. */
int sl__cidr_parse(const char *s, struct sl_cidr *out);

/* Whether sa lies in one of the n blocks (a v4-mapped v6 address counts as
 * its v4 address). */
bool sl__cidr_match(const struct sl_cidr *c, size_t n, const struct sockaddr *sa);

/* Format an address as "ip" or "ip:port" (v6 in brackets). */
void sl__addr_str(const struct sockaddr *sa, bool port, char *buf, size_t size);

#endif
