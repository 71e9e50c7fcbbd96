/*
 * Unit tests for gateway/src/base/addr.c: addresses as text (the client's
 * address in logs, X-Forwarded-For and the access log).
 */
#include "base/addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "check.h"

static const char *v4(const char *ip, unsigned short port, bool with_port, char *buf, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

    inet_pton(AF_INET, ip, &a.sin_addr);
    sl__addr_str((const struct sockaddr *)&a, with_port, buf, n);
    return buf;
}

static void test_ipv4_addresses_are_written_as_inet_ntop_would(void)
{
    static const char *const ips[] = {"0.0.0.0",   "255.255.255.255", "10.0.100.9",
                                      "127.0.0.1", "1.22.203.4",      "100.10.1.0"};
    char buf[64];

    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++)
        CHECK_STREQ(v4(ips[i], 0, false, buf, sizeof(buf)), ips[i]);
    CHECK_STREQ(v4("192.168.1.20", 8080, true, buf, sizeof(buf)), "192.168.1.20:8080");
}

static void test_ipv6_addresses_are_bracketed_with_a_port(void)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    char buf[64];

    inet_pton(AF_INET6, "2001:db8::1", &a.sin6_addr);
    sl__addr_str((const struct sockaddr *)&a, false, buf, sizeof(buf));
    CHECK_STREQ(buf, "2001:db8::1");
    sl__addr_str((const struct sockaddr *)&a, true, buf, sizeof(buf));
    CHECK_STREQ(buf, "[2001:db8::1]:443");
}

int main(void)
{
    RUN(test_ipv4_addresses_are_written_as_inet_ntop_would);
    RUN(test_ipv6_addresses_are_bracketed_with_a_port);
    return check_done();
}
