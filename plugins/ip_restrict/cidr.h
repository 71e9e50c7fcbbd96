/*
 * ip_restrict plugin: address ranges, pure (no I/O, no allocation).
 *
 * A list of CIDRs becomes two sorted arrays of disjoint ranges, one per
 * family, built once at config time; a lookup is a binary search. An IPv6
 * address or rule inside ::ffff:0:0/96 (v4-mapped) is read as the IPv4
 * address or rule it maps, so that a dual-stack listener's IPv4 clients
 * meet the IPv4 rules.
 */
#ifndef SL_PLUGIN_IP_RESTRICT_CIDR_H
#define SL_PLUGIN_IP_RESTRICT_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One address or CIDR as written: family 4 or 6, network byte order. */
struct ipr_cidr {
    int family;
    unsigned prefix; /* 0-32 or 0-128; 32 or 128 for a bare address */
    uint8_t addr[16];
};

/* What sl__ipr_cidr_parse() found. */
enum ipr_parse {
    IPR_OK = 0,
    IPR_BAD_ADDR,   /* not an IPv4 or IPv6 address */
    IPR_BAD_PREFIX, /* not a number, a leading zero, or over 32 (IPv4) or 128 (IPv6) */
    IPR_HOST_BITS,  /* bits set after the prefix: *out holds the network */
};

/*
 * Read "10.0.0.0/8", "2001:db8::/32", "192.0.2.7" or "::1" into *out (a
 * bare address is a /32 or /128; a v4-mapped IPv6 rule of prefix 96 or
 * more becomes the IPv4 rule it maps). On IPR_HOST_BITS *out is the
 * network the prefix names, with the host bits cleared.
 */
enum ipr_parse sl__ipr_cidr_parse(const char *text, struct ipr_cidr *out);

/*
 * Whether c, an IPv6 rule of prefix under 96 (its host bits cleared),
 * covers the whole of ::ffff:0:0/96 (::/0, ::/80): it still matches no
 * IPv4 client, since a v4-mapped client is read as IPv4 (a rule is
 * either family, never both), which its writer may not expect.
 */
bool sl__ipr_cidr_covers_v4mapped(const struct ipr_cidr *c);

/* Write c as text ("10.0.0.0/8") into buf (at least 64 bytes). */
void sl__ipr_cidr_str(const struct ipr_cidr *c, char *buf, size_t size);

/* Read a client's address ("192.0.2.1", "2001:db8::1", "::ffff:10.1.2.3"
 * read as 10.1.2.3) into *out (prefix 32 or 128). Returns false when text
 * is not an IP address. */
bool sl__ipr_addr_parse(const char *text, struct ipr_cidr *out);

struct ipr_range4 {
    uint32_t lo, hi; /* host byte order, inclusive */
};

struct ipr_u128 {
    uint64_t hi, lo;
};

struct ipr_range6 {
    struct ipr_u128 lo, hi; /* inclusive */
};

/* The ranges of one list: sorted, disjoint, not adjacent. */
struct ipr_set {
    struct ipr_range4 *v4;
    size_t n4;
    struct ipr_range6 *v6;
    size_t n6;
};

/*
 * Fill s from the n CIDRs of c. s->v4 and s->v6 must each have room for n
 * ranges (the caller owns them); the counts are set to what the merged
 * ranges take.
 */
void sl__ipr_set_build(struct ipr_set *s, const struct ipr_cidr *c, size_t n);

/* Whether the address a (from sl__ipr_addr_parse()) is in s. */
bool sl__ipr_set_has(const struct ipr_set *s, const struct ipr_cidr *a);

#endif
