/*
 * ip_restrict plugin: address ranges (see cidr.h).
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An IPv6 address in ::ffff:0:0/96 becomes the IPv4 address it maps. */
static void unmap(struct ipr_cidr *c)
{
    if (c->family == 6 && c->prefix >= 96 && memcmp(c->addr, v4mapped, 12) == 0) {
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = 4;
        c->prefix -= 96;
    }
}

static bool read_addr(const char *text, size_t len, struct ipr_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 1];

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        out->prefix = 32;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        out->prefix = 128;
        return true;
    }
    return false;
}

/* Clear the bits after the prefix; true if any was set. */
static bool clear_host_bits(struct ipr_cidr *c)
{
    unsigned bytes = c->family == 4 ? 4 : 16;
    bool set = false;

    for (unsigned i = 0; i < bytes; i++) {
        unsigned keep = c->prefix >= (i + 1) * 8 ? 8 : c->prefix > i * 8 ? c->prefix - i * 8 : 0;
        uint8_t mask = keep == 0 ? 0 : (uint8_t)(0xff << (8 - keep));

        if (c->addr[i] & ~mask)
            set = true;
        c->addr[i] &= mask;
    }
    return set;
}

enum ipr_parse sl__ipr_cidr_parse(const char *text, struct ipr_cidr *out)
{
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);

    if (!read_addr(text, alen, out))
        return IPR_BAD_ADDR;
    if (slash != NULL) {
        const char *d = slash + 1;
        unsigned p = 0;
        size_t n = 0;

        for (; d[n] >= '0' && d[n] <= '9' && n < 4; n++)
            p = p * 10 + (unsigned)(d[n] - '0');
        /* No leading zero, as the addresses have none either: /032 is no
         * prefix (0 alone is /0). */
        if (n == 0 || d[n] != '\0' || (n > 1 && d[0] == '0') || p > (out->family == 4 ? 32u : 128u))
            return IPR_BAD_PREFIX;
        out->prefix = p;
    }
    unmap(out);
    return clear_host_bits(out) ? IPR_HOST_BITS : IPR_OK;
}

bool sl__ipr_cidr_covers_v4mapped(const struct ipr_cidr *c)
{
    struct ipr_cidr m = {.family = 6, .prefix = c->prefix};

    if (c->family != 6 || c->prefix >= 96)
        return false;
    memcpy(m.addr, v4mapped, sizeof(v4mapped));
    clear_host_bits(&m);
    return memcmp(m.addr, c->addr, sizeof(m.addr)) == 0;
}

void sl__ipr_cidr_str(const struct ipr_cidr *c, char *buf, size_t size)
{
    char a[INET6_ADDRSTRLEN] = "?";

    inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof(a));
    snprintf(buf, size, "%s/%u", a, c->prefix);
}

bool sl__ipr_addr_parse(const char *text, struct ipr_cidr *out)
{
    if (text == NULL || !read_addr(text, strlen(text), out))
        return false;
    unmap(out);
    return true;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t be64(const uint8_t *b)
{
    return (uint64_t)be32(b) << 32 | be32(b + 4);
}

static int u128_cmp(struct ipr_u128 a, struct ipr_u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    return a.lo < b.lo ? -1 : a.lo > b.lo;
}

/* a + 1 == b, without overflow (a is not the last address). */
static bool u128_next(struct ipr_u128 a, struct ipr_u128 b)
{
    if (a.lo == UINT64_MAX)
        return a.hi != UINT64_MAX && b.hi == a.hi + 1 && b.lo == 0;
    return b.hi == a.hi && b.lo == a.lo + 1;
}

static int cmp4(const void *a, const void *b)
{
    const struct ipr_range4 *x = a, *y = b;

    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int cmp6(const void *a, const void *b)
{
    const struct ipr_range6 *x = a, *y = b;

    return u128_cmp(x->lo, y->lo);
}

static struct ipr_range4 range4(const struct ipr_cidr *c)
{
    uint32_t net = be32(c->addr);
    uint32_t host = c->prefix == 0 ? UINT32_MAX : c->prefix == 32 ? 0 : UINT32_MAX >> c->prefix;

    return (struct ipr_range4){net & ~host, net | host};
}

static struct ipr_range6 range6(const struct ipr_cidr *c)
{
    struct ipr_u128 net = {be64(c->addr), be64(c->addr + 8)}, host;

    if (c->prefix == 0)
        host = (struct ipr_u128){UINT64_MAX, UINT64_MAX};
    else if (c->prefix < 64)
        host = (struct ipr_u128){UINT64_MAX >> c->prefix, UINT64_MAX};
    else if (c->prefix < 128)
        host = (struct ipr_u128){0, c->prefix == 64 ? UINT64_MAX : UINT64_MAX >> (c->prefix - 64)};
    else
        host = (struct ipr_u128){0, 0};
    return (struct ipr_range6){{net.hi & ~host.hi, net.lo & ~host.lo},
                               {net.hi | host.hi, net.lo | host.lo}};
}

void sl__ipr_set_build(struct ipr_set *s, const struct ipr_cidr *c, size_t n)
{
    size_t n4 = 0, n6 = 0, o;

    for (size_t i = 0; i < n; i++) {
        if (c[i].family == 4)
            s->v4[n4++] = range4(&c[i]);
        else
            s->v6[n6++] = range6(&c[i]);
    }
    /* Sorted by start, then every range that overlaps or touches the one
     * before it is folded into it. */
    qsort(s->v4, n4, sizeof(*s->v4), cmp4);
    qsort(s->v6, n6, sizeof(*s->v6), cmp6);
    o = 0;
    for (size_t i = 0; i < n4; i++) {
        if (o > 0 && (s->v4[i].lo <= s->v4[o - 1].hi ||
                      (s->v4[o - 1].hi != UINT32_MAX && s->v4[i].lo == s->v4[o - 1].hi + 1))) {
            if (s->v4[i].hi > s->v4[o - 1].hi)
                s->v4[o - 1].hi = s->v4[i].hi;
        } else {
            s->v4[o++] = s->v4[i];
        }
    }
    s->n4 = o;
    o = 0;
    for (size_t i = 0; i < n6; i++) {
        if (o > 0 && (u128_cmp(s->v6[i].lo, s->v6[o - 1].hi) <= 0 ||
                      u128_next(s->v6[o - 1].hi, s->v6[i].lo))) {
            if (u128_cmp(s->v6[i].hi, s->v6[o - 1].hi) > 0)
                s->v6[o - 1].hi = s->v6[i].hi;
        } else {
            s->v6[o++] = s->v6[i];
        }
    }
    s->n6 = o;
}

bool sl__ipr_set_has(const struct ipr_set *s, const struct ipr_cidr *a)
{
    size_t lo = 0, hi;

    /* The last range that starts at or before a, if a is in any. */
    if (a->family == 4) {
        uint32_t x = be32(a->addr);

        for (hi = s->n4; lo < hi;) {
            size_t mid = lo + (hi - lo) / 2;

            if (s->v4[mid].lo <= x)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo > 0 && x <= s->v4[lo - 1].hi;
    }
    struct ipr_u128 x = {be64(a->addr), be64(a->addr + 8)};

    for (hi = s->n6; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;

        if (u128_cmp(s->v6[mid].lo, x) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && u128_cmp(x, s->v6[lo - 1].hi) <= 0;
}
