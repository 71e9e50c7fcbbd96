/*
 * The address ranges of the ip_restrict plugin (plugins/ip_restrict/
 * cidr.c): parsing what users write, merging lists, and lookups at the
 * edges of each range, in both families.
 */
#include "cidr.h"

#include "check.h"
#include "ip_restrict.h"

#define MAX_RULES 16

/* A set built from texts (each must parse), in static storage. */
static struct ipr_set set_of(const char *const *texts)
{
    static struct ipr_range4 v4[MAX_RULES];
    static struct ipr_range6 v6[MAX_RULES];
    struct ipr_cidr c[MAX_RULES];
    struct ipr_set s = {v4, 0, v6, 0};
    size_t n = 0;

    for (; texts[n] != NULL; n++)
        CHECK_EQ_INT(sl__ipr_cidr_parse(texts[n], &c[n]), IPR_OK);
    sl__ipr_set_build(&s, c, n);
    return s;
}

static bool has(const struct ipr_set *s, const char *ip)
{
    struct ipr_cidr a;

    CHECK(sl__ipr_addr_parse(ip, &a));
    return sl__ipr_set_has(s, &a);
}

static const char *str(const char *text)
{
    static char buf[64];
    struct ipr_cidr c;

    sl__ipr_cidr_parse(text, &c);
    sl__ipr_cidr_str(&c, buf, sizeof(buf));
    return buf;
}

static void test_a_bare_address_is_a_single_host(void)
{
    struct ipr_cidr c;

    CHECK_EQ_INT(sl__ipr_cidr_parse("192.0.2.7", &c), IPR_OK);
    CHECK_EQ_INT(c.family, 4);
    CHECK_EQ_UINT(c.prefix, 32);
    CHECK_EQ_INT(sl__ipr_cidr_parse("2001:db8::1", &c), IPR_OK);
    CHECK_EQ_INT(c.family, 6);
    CHECK_EQ_UINT(c.prefix, 128);
}

static void test_bad_addresses_and_prefixes_are_told_apart(void)
{
    struct ipr_cidr c;

    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0/8", &c), IPR_BAD_ADDR);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.256", &c), IPR_BAD_ADDR);
    CHECK_EQ_INT(sl__ipr_cidr_parse("example.com", &c), IPR_BAD_ADDR);
    CHECK_EQ_INT(sl__ipr_cidr_parse("", &c), IPR_BAD_ADDR);
    CHECK_EQ_INT(sl__ipr_cidr_parse("/8", &c), IPR_BAD_ADDR);
    CHECK_EQ_INT(sl__ipr_cidr_parse(" 10.0.0.0/8", &c), IPR_BAD_ADDR);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/33", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/8x", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/-1", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/00008", &c), IPR_BAD_PREFIX);
    /* No leading zeros at all, as in the addresses. */
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/08", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/032", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("0.0.0.0/00", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("::/0128", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("10.0.0.0/8", &c), IPR_OK);
    CHECK_EQ_INT(sl__ipr_cidr_parse("2001:db8::/32", &c), IPR_OK);
    CHECK_EQ_INT(sl__ipr_cidr_parse("::/129", &c), IPR_BAD_PREFIX);
    CHECK_EQ_INT(sl__ipr_cidr_parse("::/128", &c), IPR_OK);
    CHECK_EQ_INT(sl__ipr_cidr_parse("0.0.0.0/0", &c), IPR_OK);
}

static void test_host_bits_after_the_prefix_are_reported_with_the_network(void)
{
    struct ipr_cidr c;

    CHECK_EQ_INT(sl__ipr_cidr_parse("10.1.2.3/8", &c), IPR_HOST_BITS);
    CHECK_STREQ(str("10.1.2.3/8"), "10.0.0.0/8");
    CHECK_EQ_INT(sl__ipr_cidr_parse("2001:db8::1/32", &c), IPR_HOST_BITS);
    CHECK_STREQ(str("2001:db8::1/32"), "2001:db8::/32");
    CHECK_STREQ(str("192.168.1.129/25"), "192.168.1.128/25");
}

static void test_v4_mapped_rules_and_clients_are_ipv4(void)
{
    const char *const rules[] = {"::ffff:10.0.0.0/104", NULL};
    struct ipr_set s = set_of(rules);
    struct ipr_cidr c;

    CHECK_EQ_UINT(s.n4, 1);
    CHECK_EQ_UINT(s.n6, 0);
    CHECK_STREQ(str("::ffff:10.0.0.0/104"), "10.0.0.0/8");
    CHECK(has(&s, "10.200.0.1"));
    CHECK(has(&s, "::ffff:10.200.0.1"));
    CHECK(!has(&s, "11.0.0.1"));
    CHECK(sl__ipr_addr_parse("::ffff:192.0.2.1", &c));
    CHECK_EQ_INT(c.family, 4);
    /* Below /96 a rule is an IPv6 rule: it does not take in IPv4. */
    CHECK_EQ_INT(sl__ipr_cidr_parse("::/0", &c), IPR_OK);
    CHECK_EQ_INT(c.family, 6);
}

static void test_ipv4_lookups_hold_at_both_ends_of_each_range(void)
{
    const char *const rules[] = {"10.0.0.0/8", "192.168.1.128/25", "203.0.113.9", NULL};
    struct ipr_set s = set_of(rules);

    CHECK(!has(&s, "9.255.255.255"));
    CHECK(has(&s, "10.0.0.0"));
    CHECK(has(&s, "10.255.255.255"));
    CHECK(!has(&s, "11.0.0.0"));
    CHECK(!has(&s, "192.168.1.127"));
    CHECK(has(&s, "192.168.1.128"));
    CHECK(has(&s, "192.168.1.255"));
    CHECK(!has(&s, "192.168.2.0"));
    CHECK(has(&s, "203.0.113.9"));
    CHECK(!has(&s, "203.0.113.8"));
    CHECK(!has(&s, "203.0.113.10"));
    CHECK(!has(&s, "2001:db8::1"));
}

static void test_overlapping_and_adjacent_ranges_merge(void)
{
    const char *const rules[] = {"10.1.0.0/16", "10.0.0.0/8", "11.0.0.0/8",
                                 "13.0.0.1",    "13.0.0.0",   NULL};
    struct ipr_set s = set_of(rules);

    CHECK_EQ_UINT(s.n4, 2); /* 10.0.0.0-11.255.255.255 and 13.0.0.0-13.0.0.1 */
    CHECK(has(&s, "11.255.255.255"));
    CHECK(!has(&s, "12.0.0.0"));
    CHECK(has(&s, "13.0.0.0"));
    CHECK(has(&s, "13.0.0.1"));
    CHECK(!has(&s, "13.0.0.2"));
}

static void test_the_whole_space_is_one_range_in_each_family(void)
{
    const char *const rules[] = {"0.0.0.0/0", "::/0", "255.255.255.255", NULL};
    struct ipr_set s = set_of(rules);

    CHECK_EQ_UINT(s.n4, 1);
    CHECK_EQ_UINT(s.n6, 1);
    CHECK(has(&s, "0.0.0.0"));
    CHECK(has(&s, "255.255.255.255"));
    CHECK(has(&s, "::"));
    CHECK(has(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
}

static void test_ipv6_lookups_hold_across_the_64_bit_halves(void)
{
    const char *const rules[] = {"2001:db8::/32", "2001:db9:0:0:8000::/65", "::1", "fe80::/10",
                                 NULL};
    struct ipr_set s = set_of(rules);

    CHECK(has(&s, "2001:db8::"));
    CHECK(has(&s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(!has(&s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(!has(&s, "2001:db9::"));
    CHECK(!has(&s, "2001:db9:0:0:7fff:ffff:ffff:ffff"));
    CHECK(has(&s, "2001:db9:0:0:8000::"));
    CHECK(has(&s, "2001:db9:0:0:ffff:ffff:ffff:ffff"));
    CHECK(!has(&s, "2001:db9:0:1::"));
    CHECK(has(&s, "::1"));
    CHECK(!has(&s, "::2"));
    CHECK(has(&s, "febf:ffff::1"));
    CHECK(!has(&s, "fec0::"));
    CHECK(!has(&s, "10.0.0.1"));
}

static void test_adjacent_ipv6_ranges_merge_across_the_halves(void)
{
    const char *const rules[] = {"2001:db8::/64", "2001:db8:0:1::/64", NULL};
    struct ipr_set s = set_of(rules);

    CHECK_EQ_UINT(s.n6, 1);
    CHECK(has(&s, "2001:db8:0:1:ffff:ffff:ffff:ffff"));
    CHECK(!has(&s, "2001:db8:0:2::"));
}

static bool covers_v4mapped(const char *text)
{
    struct ipr_cidr c;

    return sl__ipr_cidr_parse(text, &c) == IPR_OK && sl__ipr_cidr_covers_v4mapped(&c);
}

static void test_ipv6_rules_over_the_v4_mapped_block_are_told_apart(void)
{
    /* These look as if they took in IPv4 clients, and do not. */
    CHECK(covers_v4mapped("::/0"));
    CHECK(covers_v4mapped("::/80"));
    CHECK(covers_v4mapped("::fffe:0:0/95"));
    /* These do not look so. */
    CHECK(!covers_v4mapped("::/95"));
    CHECK(!covers_v4mapped("::/96"));
    CHECK(!covers_v4mapped("2001:db8::/32"));
    CHECK(!covers_v4mapped("::ffff:0:0/96")); /* that is 0.0.0.0/0 */
    CHECK(!covers_v4mapped("0.0.0.0/0"));
}

static void test_an_address_that_cannot_be_read_never_passes(void)
{
    const char *const all[] = {"0.0.0.0/0", "::/0", NULL};
    const char *const some[] = {"10.9.0.0/16", NULL};
    struct ipr_conf c = {.deny = set_of(all)};

    /* deny: [0.0.0.0/0, "::/0"] lets no one through: not even a client
     * whose address is no IP address (a Unix socket's "unix"). */
    CHECK(!sl__ipr_passes(&c, "10.0.0.1"));
    CHECK(!sl__ipr_passes(&c, "::1"));
    CHECK(!sl__ipr_passes(&c, "unix"));
    CHECK(!sl__ipr_passes(&c, ""));
    CHECK(!sl__ipr_passes(&c, NULL));
    c.deny = set_of(some);
    CHECK(sl__ipr_passes(&c, "10.1.0.1"));
    CHECK(!sl__ipr_passes(&c, "10.9.0.1"));
    CHECK(!sl__ipr_passes(&c, "unix"));
    c.allow = c.deny;
    c.deny = (struct ipr_set){0};
    c.has_allow = true;
    CHECK(sl__ipr_passes(&c, "10.9.0.1"));
    CHECK(!sl__ipr_passes(&c, "10.1.0.1"));
    CHECK(!sl__ipr_passes(&c, "unix"));
}

static void test_an_empty_set_has_nothing_and_garbage_is_no_address(void)
{
    const char *const rules[] = {NULL};
    struct ipr_set s = set_of(rules);
    struct ipr_cidr c;

    CHECK(!has(&s, "10.0.0.1"));
    CHECK(!has(&s, "::1"));
    CHECK(!sl__ipr_addr_parse("unix", &c));
    CHECK(!sl__ipr_addr_parse(NULL, &c));
    CHECK(!sl__ipr_addr_parse("10.0.0.1/32", &c));
}

int main(void)
{
    RUN(test_a_bare_address_is_a_single_host);
    RUN(test_bad_addresses_and_prefixes_are_told_apart);
    RUN(test_host_bits_after_the_prefix_are_reported_with_the_network);
    RUN(test_v4_mapped_rules_and_clients_are_ipv4);
    RUN(test_ipv4_lookups_hold_at_both_ends_of_each_range);
    RUN(test_overlapping_and_adjacent_ranges_merge);
    RUN(test_the_whole_space_is_one_range_in_each_family);
    RUN(test_ipv6_lookups_hold_across_the_64_bit_halves);
    RUN(test_adjacent_ipv6_ranges_merge_across_the_halves);
    RUN(test_an_empty_set_has_nothing_and_garbage_is_no_address);
    RUN(test_ipv6_rules_over_the_v4_mapped_block_are_told_apart);
    RUN(test_an_address_that_cannot_be_read_never_passes);
    return check_done();
}
