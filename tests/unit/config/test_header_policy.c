/*
 * Unit tests for gateway/src/header_policy.c: which request header names
 * fold to a gateway-owned one, and which request trailers may go upstream.
 */
#include "config/header_policy.h"

#include "check.h"

static struct sl_str str(const char *s)
{
    return sl_str_from(s);
}

static void test_names_fold_underscore_to_dash_in_any_case(void)
{
    CHECK(sl__header_fold_eq(str("X_Forwarded_For"), str("X-Forwarded-For")));
    CHECK(sl__header_fold_eq(str("x_forwarded-FOR"), str("X-Forwarded-For")));
    CHECK(sl__header_fold_eq(str("X-Forwarded-For"), str("x-forwarded-for")));
    CHECK(!sl__header_fold_eq(str("X_Forwarded_Fo"), str("X-Forwarded-For")));
    CHECK(!sl__header_fold_eq(str("X.Forwarded.For"), str("X-Forwarded-For")));
    CHECK(!sl__header_fold_eq(str("X-Forwarded-For"), str("X_Forwarded_For_")));
}

static void test_every_builtin_gateway_name_is_owned_with_its_twins(void)
{
    struct sl_header_policy hp = {0};
    static const char *const owned[] = {
        "Host",
        "Content_Length",
        "Transfer_Encoding",
        "connection",
        "Keep_Alive",
        "Proxy_Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "Expect",
        "X_Forwarded_For",
        "x_forwarded_proto",
        "X-Forwarded_Host",
        "X_CLIENT_CERT_SUBJECT",
    };

    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        CHECK(sl__header_owned(&hp.owned, str(owned[i])));
    CHECK(!sl__header_owned(&hp.owned, str("X_Custom")));
    CHECK(!sl__header_owned(&hp.owned, str("X-Request-Id"))); /* only once request_id declares it */
}

static void test_a_declared_name_is_owned_once_however_often_it_is_declared(void)
{
    struct sl_header_policy hp = {0};
    struct sl_arena a;

    sl_arena_init(&a, 4096, 0);
    for (int i = 0; i < 20; i++) {
        char name[32];

        snprintf(name, sizeof(name), "X-Claim-%d", i);
        sl__header_names_add(&hp.owned, &a, name);
        sl__header_names_add(&hp.owned, &a, "X-User-Id");
        sl__header_names_add(&hp.owned, &a, "x_user_id");
    }
    CHECK_EQ_INT(hp.owned.n, 21);
    CHECK(sl__header_owned(&hp.owned, str("X_User_Id")));
    CHECK(sl__header_owned(&hp.owned, str("x_claim_19")));
    CHECK(!sl__header_owned(&hp.owned, str("X_Claim_20")));
    sl_arena_destroy(&a);
}

static void test_trailers_go_upstream_only_when_forwarded_and_never_an_owned_name(void)
{
    struct sl_header_policy hp = {.underscores = SL_UNDERSCORES_DROP};
    struct sl_arena a;

    sl_arena_init(&a, 4096, 0);
    sl__header_names_add(&hp.owned, &a, "X-Request-Id");
    CHECK(!sl__header_trailer_ok(str("X-Checksum"), &hp)); /* request_trailers: drop */
    hp.forward_trailers = true;
    CHECK(sl__header_trailer_ok(str("X-Checksum"), &hp));
    CHECK(!sl__header_trailer_ok(str("X-Client-Cert-Subject"), &hp));
    CHECK(!sl__header_trailer_ok(str("X_Client_Cert_Subject"), &hp));
    CHECK(!sl__header_trailer_ok(str("X-Forwarded-For"), &hp));
    CHECK(!sl__header_trailer_ok(str("x-request-id"), &hp));
    CHECK(!sl__header_trailer_ok(str("X_Checksum"), &hp)); /* underscores dropped */
    hp.underscores = SL_UNDERSCORES_ALLOW;
    CHECK(sl__header_trailer_ok(str("X_Checksum"), &hp));
    CHECK(!sl__header_trailer_ok(str("X_Request_Id"), &hp));
    sl_arena_destroy(&a);
}

int main(void)
{
    RUN(test_names_fold_underscore_to_dash_in_any_case);
    RUN(test_every_builtin_gateway_name_is_owned_with_its_twins);
    RUN(test_a_declared_name_is_owned_once_however_often_it_is_declared);
    RUN(test_trailers_go_upstream_only_when_forwarded_and_never_an_owned_name);
    return check_done();
}
