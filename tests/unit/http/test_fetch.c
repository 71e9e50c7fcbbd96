/*
 * Unit tests for gateway/src/http/fetch.c: the fetch client against a tiny
 * HTTP server on the same loop (127.0.0.1, a port the kernel picks), which
 * answers each connection with the canned bytes the test chose. HTTPS is
 * exercised end to end by the jwt plugin's JWKS tests.
 */
#include "sluice/fetch.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

struct server {
    uv_tcp_t tcp;
    const char *answer; /* written whole, then the connection is closed; NULL: say nothing */
    char seen[2048];    /* what the last client sent */
    size_t seen_len;
    int port;
};

struct client {
    uv_tcp_t tcp;
    struct server *s;
    uv_write_t w;
    char buf[2048];
};

struct outcome {
    bool called;
    int status;
    char error[128];
    char body[256];
    size_t body_len;
    bool has_max_age;
    uint64_t max_age;
};

static void free_client(uv_handle_t *h)
{
    free(h->data);
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, free_client);
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    struct client *c = h->data;

    (void)size;
    *b = uv_buf_init(c->buf, sizeof(c->buf));
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct client *c = st->data;
    struct server *s = c->s;

    if (n <= 0) {
        uv_close((uv_handle_t *)st, free_client);
        return;
    }
    if (s->seen_len + (size_t)n < sizeof(s->seen)) {
        memcpy(s->seen + s->seen_len, b->base, (size_t)n);
        s->seen_len += (size_t)n;
        s->seen[s->seen_len] = '\0';
    }
    if (strstr(s->seen, "\r\n\r\n") == NULL || s->answer == NULL)
        return;
    uv_read_stop(st);
    {
        uv_buf_t out = uv_buf_init((char *)s->answer, (unsigned)strlen(s->answer));

        uv_write(&c->w, st, &out, 1, written);
    }
}

static void on_conn(uv_stream_t *server, int status)
{
    struct server *s = server->data;
    struct client *c = calloc(1, sizeof(*c));

    (void)status;
    c->s = s;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(server, (uv_stream_t *)&c->tcp);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void server_start(uv_loop_t *loop, struct server *s, const char *answer)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);

    memset(s, 0, sizeof(*s));
    s->answer = answer;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    uv_tcp_bind(&s->tcp, (const struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&s->tcp, 8, on_conn);
    uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&got, &len);
    s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void done(void *arg, const struct sl_fetch_result *r)
{
    struct outcome *o = arg;

    o->called = true;
    o->status = r->status;
    snprintf(o->error, sizeof(o->error), "%s", r->error ? r->error : "");
    o->body_len = r->body_len < sizeof(o->body) - 1 ? r->body_len : sizeof(o->body) - 1;
    memcpy(o->body, r->body, o->body_len);
    o->body[o->body_len] = '\0';
    o->has_max_age = r->has_max_age;
    o->max_age = r->max_age_s;
}

/* Fetch path from the server answering answer; the loop runs until all
 * is closed, the server included. */
static struct outcome run(const char *answer, const char *method, const char *body,
                          uint64_t timeout_ms, struct server *s)
{
    uv_loop_t loop;
    struct outcome o = {0};
    char url[64];
    struct sl_fetch_opts opts = {.method = method,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0,
                                 .timeout_ms = timeout_ms,
                                 .headers = "X-Test: 1\r\n"};

    uv_loop_init(&loop);
    server_start(&loop, s, answer);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/jwks.json?x=1", s->port);
    opts.url = url;
    CHECK(sl_fetch(&loop, &opts, done, &o) != NULL);
    while (!o.called)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&s->tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0); /* no live handles left */
    return o;
}

static void test_a_response_with_a_length_is_read_whole_with_its_max_age(void)
{
    struct server s;
    struct outcome o = run("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                           "Cache-Control: public, max-age=300\r\n\r\nhello",
                           NULL, NULL, 0, &s);

    CHECK(o.called);
    CHECK_EQ_INT(o.status, 200);
    CHECK_STREQ(o.error, "");
    CHECK_STREQ(o.body, "hello");
    CHECK(o.has_max_age);
    CHECK_EQ_UINT(o.max_age, 300);
    CHECK(strncmp(s.seen, "GET /jwks.json?x=1 HTTP/1.1\r\n", 29) == 0);
    CHECK_CONTAINS(s.seen, "\r\nHost: 127.0.0.1:");
    CHECK_CONTAINS(s.seen, "\r\nX-Test: 1\r\n");
    CHECK_CONTAINS(s.seen, "\r\nConnection: close\r\n");
}

static void test_chunked_and_close_delimited_bodies_are_read_whole(void)
{
    struct server s;
    struct outcome o = run("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                           NULL, NULL, 0, &s);

    CHECK_STREQ(o.body, "abcde");
    CHECK_STREQ(o.error, "");
    o = run("HTTP/1.1 200 OK\r\n\r\nuntil the close", NULL, NULL, 0, &s);
    CHECK_STREQ(o.body, "until the close");
    CHECK_STREQ(o.error, "");
    CHECK(!o.has_max_age);
}

static void test_a_post_carries_its_body_and_a_non_2xx_status_is_not_an_error(void)
{
    struct server s;
    struct outcome o =
        run("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", "POST", "token=abc", 0, &s);

    CHECK_EQ_INT(o.status, 401);
    CHECK_STREQ(o.error, "");
    CHECK(strncmp(s.seen, "POST /jwks.json?x=1 HTTP/1.1\r\n", 30) == 0);
    CHECK_CONTAINS(s.seen, "\r\nContent-Length: 9\r\n\r\ntoken=abc");
}

static void test_a_server_that_says_nothing_times_out_and_a_cut_response_fails(void)
{
    struct server s;
    struct outcome o = run(NULL, NULL, NULL, 200, &s);

    CHECK(o.called);
    CHECK_STREQ(o.error, "timed out");
    CHECK_EQ_INT(o.status, 0);
    o = run("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", NULL, NULL, 0, &s);
    CHECK(o.error[0] != '\0');
    o = run("garbage\r\n\r\n", NULL, NULL, 0, &s);
    CHECK_STREQ(o.error, "the response is not valid HTTP");
}

static void test_a_refused_connection_fails_and_a_bad_url_does_not_start(void)
{
    uv_loop_t loop;
    struct outcome o = {0};
    struct sl_fetch_opts opts = {.url = "http://127.0.0.1:1/"};
    static const char *const bad[] = {
        "ftp://x/",           "http://", "http://a b/", "http://[::1/", "http://h:port/",
        "http://h:99999999/", NULL};

    uv_loop_init(&loop);
    CHECK(sl_fetch(&loop, &opts, done, &o) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(o.called);
    CHECK(o.error[0] != '\0');
    for (int i = 0; bad[i]; i++) {
        opts.url = bad[i];
        CHECK(sl_fetch(&loop, &opts, done, &o) == NULL);
    }
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_a_canceled_fetch_never_calls_back_and_leaves_nothing_behind(void)
{
    uv_loop_t loop;
    struct server s;
    struct outcome o = {0};
    char url[64];
    struct sl_fetch_opts opts = {0};
    struct sl_fetch *f;

    uv_loop_init(&loop);
    server_start(&loop, &s, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    opts.url = url;
    f = sl_fetch(&loop, &opts, done, &o);
    CHECK(f != NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    sl_fetch_cancel(f);
    uv_close((uv_handle_t *)&s.tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(!o.called);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_loopback_urls_are_told_apart(void)
{
    CHECK(sl_fetch_url_is_loopback("http://127.0.0.1:8080/x"));
    CHECK(sl_fetch_url_is_loopback("http://localhost/x"));
    CHECK(sl_fetch_url_is_loopback("http://[::1]:80/"));
    CHECK(!sl_fetch_url_is_loopback("http://idp.example.com/"));
    CHECK(!sl_fetch_url_is_loopback("http://10.0.0.1/"));
    CHECK(sl_fetch_url_is_loopback("http://127.9.8.7/"));
    CHECK(!sl_fetch_url_is_loopback("http://127.0.0.1.nip.io/"));
    CHECK(!sl_fetch_url_is_loopback("http://localhost.example.com/"));
}

static void test_urls_with_credentials_or_bad_ports_are_refused(void)
{
    CHECK(sl_fetch_url_ok("https://idp.example.com/introspect"));
    CHECK(sl_fetch_url_ok("https://idp.example.com:8443/x?y=1"));
    CHECK(sl_fetch_url_ok("http://[::1]:80/"));
    CHECK(!sl_fetch_url_ok("https://user:pw@idp.example.com/"));
    CHECK(!sl_fetch_url_ok("https://idp.example.com:0/"));
    CHECK(!sl_fetch_url_ok("https://idp.example.com:65536/"));
    CHECK(!sl_fetch_url_ok("https://idp.example.com:99999999/"));
    CHECK(!sl_fetch_url_ok("https:///x"));
    CHECK(!sl_fetch_url_ok("ftp://idp.example.com/"));
    CHECK(!sl_fetch_url_ok("https://idp.example.com/a b"));
}

int main(void)
{
    RUN(test_a_response_with_a_length_is_read_whole_with_its_max_age);
    RUN(test_chunked_and_close_delimited_bodies_are_read_whole);
    RUN(test_a_post_carries_its_body_and_a_non_2xx_status_is_not_an_error);
    RUN(test_a_server_that_says_nothing_times_out_and_a_cut_response_fails);
    RUN(test_a_refused_connection_fails_and_a_bad_url_does_not_start);
    RUN(test_a_canceled_fetch_never_calls_back_and_leaves_nothing_behind);
    RUN(test_loopback_urls_are_told_apart);
    RUN(test_urls_with_credentials_or_bad_ports_are_refused);
    return check_done();
}
