/*
 * Unit tests for gateway/src/buf.c: pooled refcounted buffers and gathered
 * writes, driven over a real libuv loop. One end of a socketpair is the
 * stream sl_out writes to; the other end is read on the same loop, and what
 * arrives must be exactly the sequence that was gathered.
 */
#include "base/buf.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* A growable byte string. */
struct bytes {
    char *p;
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const char *p, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
}

struct harness {
    uv_loop_t loop;
    uv_pipe_t writer, reader;
    bool with_reader;
    uv_shutdown_t shutdown;
    bool shutting_down;
    struct sl_bufpool pool;
    struct sl_out out;
    struct bytes expected; /* what the test gathered, in order */
    struct bytes received; /* what came out of the other end */
    int writes_done;       /* calls of the out's written callback */
    bool gathered;         /* gathering is over: shut down after the last write */
    bool eof;
    int read_error;
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct harness *h = s->data;

    if (nread > 0)
        bytes_add(&h->received, buf->base, (size_t)nread);
    free(buf->base);
    if (nread < 0) {
        if (nread == UV_EOF)
            h->eof = true;
        else
            h->read_error = (int)nread;
        uv_close((uv_handle_t *)s, NULL);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status; /* a peer that is gone makes this fail: close either way */
    uv_close((uv_handle_t *)req->handle, NULL);
}

static void start_shutdown(struct harness *h)
{
    if (h->shutting_down)
        return;
    h->shutting_down = true;
    if (uv_shutdown(&h->shutdown, (uv_stream_t *)&h->writer, on_shutdown) != 0)
        uv_close((uv_handle_t *)&h->writer, NULL);
}

static void on_written(void *owner)
{
    struct harness *h = owner;

    h->writes_done++;
    if (h->gathered && h->out.pending == 0)
        start_shutdown(h);
}

static void harness_init(struct harness *h, bool with_reader)
{
    int sv[2];

    memset(h, 0, sizeof(*h));
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    /* Small kernel buffers, so that big batches only partly fit and libuv
     * has to queue them and finish them over several loop turns. */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){8192}, sizeof(int));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &(int){8192}, sizeof(int));
    CHECK_EQ_INT(uv_loop_init(&h->loop), 0);
    CHECK_EQ_INT(uv_pipe_init(&h->loop, &h->writer, 0), 0);
    CHECK_EQ_INT(uv_pipe_open(&h->writer, sv[0]), 0);
    h->writer.data = h;
    h->with_reader = with_reader;
    if (with_reader) {
        CHECK_EQ_INT(uv_pipe_init(&h->loop, &h->reader, 0), 0);
        CHECK_EQ_INT(uv_pipe_open(&h->reader, sv[1]), 0);
        h->reader.data = h;
        CHECK_EQ_INT(uv_read_start((uv_stream_t *)&h->reader, on_alloc, on_read), 0);
    } else {
        close(sv[1]); /* the peer is gone before anything is written */
    }
    sl__bufpool_init(&h->pool, 4);
    sl__out_init(&h->out, (uv_stream_t *)&h->writer, &h->pool, on_written, h);
}

/* Gather helpers that also record what the peer should receive. */
static void slice(struct harness *h, struct sl_buf *b, size_t off, size_t len)
{
    sl__out_slice(&h->out, b, b->data + off, len);
    bytes_add(&h->expected, b->data + off, len);
}

static void copy(struct harness *h, const char *p, size_t len)
{
    sl__out_copy(&h->out, p, len);
    bytes_add(&h->expected, p, len);
}

/* Flush the last batch, run the loop until both ends are closed, and check
 * that the loop has nothing left alive. */
static void harness_finish(struct harness *h)
{
    CHECK_EQ_INT(sl__out_flush(&h->out), 0);
    h->gathered = true;
    if (h->out.pending == 0)
        start_shutdown(h);
    CHECK_EQ_INT(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(uv_loop_alive(&h->loop), 0);
    CHECK_EQ_INT(uv_loop_close(&h->loop), 0);
}

static void harness_free(struct harness *h)
{
    sl__bufpool_destroy(&h->pool);
    free(h->expected.p);
    free(h->received.p);
}

/* Did the peer get exactly the gathered bytes? */
static void check_received_what_was_gathered(struct harness *h)
{
    CHECK(h->eof);
    CHECK_EQ_INT(h->read_error, 0);
    CHECK_EQ_UINT(h->received.len, h->expected.len);
    if (h->received.len == h->expected.len && h->expected.len > 0) {
        size_t i = 0;

        while (i < h->expected.len && h->received.p[i] == h->expected.p[i])
            i++;
        if (!CHECK(i == h->expected.len))
            fprintf(stderr, "    first difference at byte %zu of %zu\n", i, h->expected.len);
    }
    CHECK_EQ_UINT(h->out.bytes, h->expected.len);
    CHECK_EQ_INT(h->out.error, 0);
    CHECK_EQ_INT(h->out.pending, 0);
}

/* A buffer of the pool filled with a pattern that differs per seed. */
static struct sl_buf *filled(struct sl_bufpool *p, unsigned seed)
{
    struct sl_buf *b = sl__buf_get(p, SL_BUF_SIZE);

    for (uint32_t i = 0; i < b->cap; i++)
        b->data[i] = (char)('A' + (i * 7 + seed * 13) % 58);
    b->len = b->cap;
    return b;
}

static void test_buffers_come_back_to_the_pool(void)
{
    struct sl_bufpool pool;
    struct sl_buf *a, *b, *big;

    sl__bufpool_init(&pool, 1);
    a = sl__buf_get(&pool, 100);
    CHECK(a->cap >= 100 && a->len == 0 && a->refs == 1);
    b = sl__buf_get(&pool, SL_BUF_SIZE);
    big = sl__buf_get(&pool, SL_BUF_SIZE * 3);
    CHECK(big->cap >= SL_BUF_SIZE * 3);
    CHECK_EQ_UINT(pool.in_use, 3);
    sl__buf_ref(a);
    sl__buf_unref(a);
    CHECK_EQ_UINT(pool.in_use, 3);
    sl__buf_unref(a);
    sl__buf_unref(b); /* over max_free: freed, not kept */
    sl__buf_unref(big);
    CHECK_EQ_UINT(pool.in_use, 0);
    CHECK_EQ_UINT(pool.n_free, 1);
    /* The kept buffer is handed out again. */
    b = sl__buf_get(&pool, 10);
    CHECK_EQ_UINT(pool.n_free, 0);
    CHECK(b->len == 0 && b->refs == 1);
    sl__buf_unref(b);
    sl__bufpool_destroy(&pool);
}

static void test_gathered_slices_copies_and_printf_arrive_in_order(void)
{
    struct harness h;
    struct sl_buf *src[12];
    char frame[64], big[40000];
    size_t in_flight;

    harness_init(&h, true);
    for (unsigned i = 0; i < 12; i++)
        src[i] = filled(&h.pool, i);
    /* Interleave slices of many buffers with copied framing, so that no two
     * pieces are contiguous: far more than SL_OUT_IOV iovecs and more than
     * SL_OUT_BUFS buffers, which forces several writes. */
    for (unsigned i = 0; i < 300; i++) {
        struct sl_buf *b = src[(i * 5) % 12];
        size_t off = (i * 977) % (SL_BUF_SIZE - 2000), len = 1 + (i * 131) % 1500;
        int n;

        slice(&h, b, off, len);
        n = snprintf(frame, sizeof(frame), "[%u]", i);
        copy(&h, frame, (size_t)n);
        if (i % 7 == 0) {
            sl__out_printf(&h.out, "%zx\r\n", len);
            n = snprintf(frame, sizeof(frame), "%zx\r\n", len);
            bytes_add(&h.expected, frame, (size_t)n);
        }
        if (i % 50 == 49)
            CHECK_EQ_INT(sl__out_flush(&h.out), 0);
    }
    /* Copies that overflow the batch's text buffer, and one bigger than a
     * pool buffer. */
    memset(big, 'z', sizeof(big));
    copy(&h, big, 20000);
    copy(&h, big, 20000);
    slice(&h, src[0], 0, 10);
    copy(&h, big, sizeof(big));
    /* Zero-length pieces are nothing. */
    slice(&h, src[1], 0, 0);
    copy(&h, "", 0);
    /* The gathered writes hold their own references now. */
    for (unsigned i = 0; i < 12; i++)
        sl__buf_unref(src[i]);
    CHECK(h.pool.in_use > 0);
    /* More than the kernel takes at once: the rest waits in libuv's queue. */
    CHECK(sl__out_queued(&h.out) > 0);
    harness_finish(&h);
    in_flight = h.pool.in_use;
    check_received_what_was_gathered(&h);
    CHECK(h.writes_done > 300 / SL_OUT_IOV);
    CHECK_EQ_UINT(in_flight, 0);
    CHECK(h.pool.n_free <= h.pool.max_free);
    harness_free(&h);
}

static void test_fields_numbers_and_reserved_text_arrive_as_written(void)
{
    static const uint64_t nums[] = {0, 7, 10, 255, 1000000, UINT64_MAX};
    struct harness h;
    struct sl_buf *src = NULL;
    char frame[64];

    harness_init(&h, true);
    src = filled(&h.pool, 3);
    for (unsigned i = 0; i < 200; i++) {
        int n;
        char *p;

        sl__out_field(&h.out, SL_STR("X-Name"), SL_STR("value"));
        bytes_add(&h.expected, "X-Name: value\r\n", 15);
        sl__out_field(&h.out, SL_STR("Empty"), SL_STR(""));
        bytes_add(&h.expected, "Empty: \r\n", 9);
        sl__out_uint(&h.out, nums[i % 6], 10);
        n = snprintf(frame, sizeof(frame), "%llu", (unsigned long long)nums[i % 6]);
        bytes_add(&h.expected, frame, (size_t)n);
        sl__out_uint(&h.out, nums[i % 6], 16);
        n = snprintf(frame, sizeof(frame), "%llx", (unsigned long long)nums[i % 6]);
        bytes_add(&h.expected, frame, (size_t)n);
        p = sl__out_reserve(&h.out, 3);
        memcpy(p, "abc", 3);
        bytes_add(&h.expected, "abc", 3);
        /* A slice between texts: the next text cannot extend the last. */
        if (i % 3 == 0)
            slice(&h, src, i, 5);
    }
    sl__buf_unref(src);
    harness_finish(&h);
    check_received_what_was_gathered(&h);
    harness_free(&h);
}

static void test_slices_of_one_buffer_that_touch_are_sent_as_one_piece(void)
{
    struct harness h;
    struct sl_buf *b;

    char fill[64 * 1024];

    harness_init(&h, true);
    /* More than the socket takes: what follows waits in libuv's queue and
     * reports each of its writes through the callback (a write the socket
     * takes at once does not). */
    memset(fill, 'f', sizeof(fill));
    copy(&h, fill, sizeof(fill));
    CHECK_EQ_INT(sl__out_flush(&h.out), 0);
    CHECK_EQ_UINT(h.out.pending, 1);
    b = filled(&h.pool, 3);
    /* 100 contiguous slices would need 100 iovecs (four writes of at most
     * SL_OUT_IOV) unless merged into one. */
    for (size_t i = 0; i < 100; i++)
        slice(&h, b, i * 10, 10);
    sl__buf_unref(b);
    harness_finish(&h);
    check_received_what_was_gathered(&h);
    CHECK_EQ_INT(h.writes_done, 2);
    CHECK_EQ_UINT(h.pool.in_use, 0);
    harness_free(&h);
}

static void test_a_write_the_socket_takes_at_once_is_done_without_a_callback(void)
{
    struct harness h;

    harness_init(&h, true);
    copy(&h, "HTTP/1.1 200 OK\r\n\r\n", 19);
    CHECK_EQ_INT(sl__out_flush(&h.out), 0);
    CHECK_EQ_UINT(h.out.pending, 0);
    CHECK_EQ_UINT(sl__out_queued(&h.out), 0);
    CHECK_EQ_UINT(h.pool.in_use, 0); /* the text buffer is back already */
    harness_finish(&h);
    check_received_what_was_gathered(&h);
    CHECK_EQ_INT(h.writes_done, 0);
    harness_free(&h);
}

static void test_discarded_pieces_are_never_sent(void)
{
    struct harness h;
    struct sl_buf *b;

    harness_init(&h, true);
    b = filled(&h.pool, 5);
    sl__out_slice(&h.out, b, b->data, 100);
    sl__out_copy(&h.out, "dropped", 7);
    sl__out_discard(&h.out);
    CHECK_EQ_UINT(h.pool.in_use, 1); /* only our own reference on b */
    copy(&h, "kept", 4);
    slice(&h, b, 200, 50);
    sl__buf_unref(b);
    harness_finish(&h);
    check_received_what_was_gathered(&h);
    CHECK_EQ_UINT(h.pool.in_use, 0);
    harness_free(&h);
}

static void test_flushing_nothing_writes_nothing(void)
{
    struct harness h;

    harness_init(&h, true);
    CHECK_EQ_INT(sl__out_flush(&h.out), 0);
    CHECK_EQ_INT(h.out.pending, 0);
    harness_finish(&h);
    check_received_what_was_gathered(&h);
    CHECK_EQ_INT(h.writes_done, 0);
    harness_free(&h);
}

static void test_printf_text_longer_than_512_bytes_arrives_whole(void)
{
    struct harness h;
    char value[700];

    harness_init(&h, true);
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    sl__out_printf(&h.out, "X-Long: %s\r\n", value);
    bytes_add(&h.expected, "X-Long: ", 8);
    bytes_add(&h.expected, value, sizeof(value) - 1);
    bytes_add(&h.expected, "\r\n", 2);
    harness_finish(&h);
    check_received_what_was_gathered(&h);
    CHECK_EQ_UINT(h.pool.in_use, 0);
    harness_free(&h);
}

static void test_a_write_to_a_closed_peer_reports_an_error_and_returns_the_buffers(void)
{
    struct harness h;
    struct sl_buf *b;
    int rc;

    harness_init(&h, false);
    b = filled(&h.pool, 9);
    for (int i = 0; i < 40; i++) {
        sl__out_slice(&h.out, b, b->data + i * 100, 50);
        sl__out_copy(&h.out, "--", 2);
    }
    sl__buf_unref(b);
    rc = sl__out_flush(&h.out);
    h.gathered = true;
    if (h.out.pending == 0)
        start_shutdown(&h);
    CHECK_EQ_INT(uv_run(&h.loop, UV_RUN_DEFAULT), 0);
    CHECK(rc < 0 || h.out.error < 0);
    CHECK(h.out.error < 0);
    CHECK_EQ_INT(h.out.pending, 0);
    CHECK_EQ_UINT(h.pool.in_use, 0);
    /* Once failed, later flushes report the error and drop what they had. */
    sl__out_copy(&h.out, "late", 4);
    CHECK(sl__out_flush(&h.out) < 0);
    CHECK_EQ_UINT(h.pool.in_use, 0);
    CHECK_EQ_INT(uv_loop_close(&h.loop), 0);
    harness_free(&h);
}

int main(void)
{
    /* Writing to a closed socket must fail with EPIPE, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    RUN(test_buffers_come_back_to_the_pool);
    RUN(test_gathered_slices_copies_and_printf_arrive_in_order);
    RUN(test_fields_numbers_and_reserved_text_arrive_as_written);
    RUN(test_slices_of_one_buffer_that_touch_are_sent_as_one_piece);
    RUN(test_a_write_the_socket_takes_at_once_is_done_without_a_callback);
    RUN(test_discarded_pieces_are_never_sent);
    RUN(test_flushing_nothing_writes_nothing);
    RUN(test_printf_text_longer_than_512_bytes_arrives_whole);
    RUN(test_a_write_to_a_closed_peer_reports_an_error_and_returns_the_buffers);
    return check_done();
}
