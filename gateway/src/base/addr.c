/*
 * Addresses as text and address blocks (trusted_proxies; ip_restrict
 * later): pure functions used per request.
 */
#include "base/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a.b.c.d into buf (room for INET_ADDRSTRLEN). */
static void ipv4_str(const struct in_addr *a, char *buf)
{
    const unsigned char *b = (const unsigned char *)&a->s_addr;

    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];

        if (v >= 100)
            *buf++ = (char)('0' + v / 100);
        if (v >= 10)
            *buf++ = (char)('0' + v / 10 % 10);
        *buf++ = (char)('0' + v % 10);
        *buf++ = i < 3 ? '.' : '\0';
    }
}

void sl__addr_str(const struct sockaddr *sa, bool port, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;

        /* Once per busy connection: by hand (glibc's inet_ntop() formats
         * an IPv4 address with sprintf, some 1,500 instructions). */
        if (!port && size >= INET_ADDRSTRLEN) {
            ipv4_str(&in->sin_addr, buf);
            return;
        }
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        p = ntohs(in->sin_port);
        if (port)
            snprintf(buf, size, "%s:%u", ip, p);
        else
            snprintf(buf, size, "%s", ip);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        p = ntohs(in6->sin6_port);
        if (port)
            snprintf(buf, size, "[%s]:%u", ip, p);
        else
            snprintf(buf, size, "%s", ip);
    } else {
        snprintf(buf, size, "unix");
    }
}

/* One address for a listener; "*:port" listens on every IPv4 address. */
int sl__cidr_parse(const char *s, struct sl_cidr *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    long prefix;
    char *end;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        prefix = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        long max = prefix;

        prefix = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || prefix < 0 || prefix > max)
            return -1;
    }
    out->prefix = (uint8_t)prefix;
    return 0;
}

bool sl__cidr_match(const struct sl_cidr *c, size_t n, const struct sockaddr *sa)
{
    const uint8_t *a;
    uint8_t v4mapped[4];
    int family = sa->sa_family;

    if (family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
            memcpy(v4mapped, a + 12, 4);
            a = v4mapped;
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned full = c[i].prefix / 8, rest = c[i].prefix % 8;

        if (c[i].family != family || memcmp(c[i].addr, a, full) != 0)
            continue;
        if (rest == 0 || ((c[i].addr[full] ^ a[full]) & (0xff << (8 - rest))) == 0)
            return true;
    }
    return false;
}
