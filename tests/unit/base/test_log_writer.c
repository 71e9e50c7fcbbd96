/*
 * Unit tests for gateway/src/base/log_writer.c: the background writer of
 * log lines, over real pipes. A pipe nobody reads stands for a stuck sink
 * (a FIFO without a reader, a full stdout pipe): appending must not block,
 * what does not fit must be dropped and counted exactly, and stop must
 * return anyway.
 */
#include "base/log_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* Everything readable from fd now (its write end closed or not). */
static char *drain(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap + 1);
    ssize_t r;

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while ((r = read(fd, p + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n == cap)
            p = realloc(p, (cap *= 2) + 1);
    }
    p[n] = '\0';
    *len = n;
    return p;
}

static size_t lines_in(const char *p, size_t n)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        c += p[i] == '\n';
    return c;
}

/* "line NNNNN\n": 11 bytes. */
static void append_lines(struct sl_log_writer *w, int from, int to)
{
    char buf[32];

    for (int i = from; i < to; i++) {
        snprintf(buf, sizeof(buf), "line %05d\n", i);
        sl__log_writer_append(w, buf, strlen(buf));
    }
}

static void lines_reach_a_pipe_whole_and_in_order(void)
{
    struct sl_log_writer *w = sl__log_writer_start(4096);
    int p[2];
    size_t n;
    char *got, want[32];

    CHECK(pipe(p) == 0);
    sl__log_writer_set_fd(w, p[1], 0);
    append_lines(w, 0, 1000); /* 11,000 bytes through a 4 KiB ring: it drains as we go */
    sl__log_writer_stop(w, 1000);
    got = drain(p[0], &n);
    CHECK_EQ_UINT(sl__log_writer_written(w), n / 11);
    CHECK_EQ_UINT(sl__log_writer_written(w) + sl__log_writer_dropped(w), 1000);
    sl__log_writer_free(w);
    /* Some lines may have met a full ring; those that arrived are whole and
     * in order, and none is missing that was not counted. */
    CHECK(n % 11 == 0);
    snprintf(want, sizeof(want), "line %05d\n", 0);
    CHECK(strncmp(got, want, 11) == 0);
    for (size_t i = 11; i < n; i += 11)
        CHECK(strncmp(got + i - 11, got + i, 11) < 0);
    free(got);
    close(p[0]);
}

static void lines_appended_before_a_descriptor_wait_for_it(void)
{
    struct sl_log_writer *w = sl__log_writer_start(1 << 16);
    int p[2];
    size_t n;
    char *got;

    CHECK(pipe(p) == 0);
    append_lines(w, 0, 50);
    CHECK_EQ_INT(sl__log_writer_set_fd(w, p[1], 5000), 0);
    got = drain(p[0], &n);
    CHECK_EQ_UINT(n, 50 * 11);
    CHECK_EQ_UINT(sl__log_writer_written(w), 50);
    CHECK_EQ_UINT(sl__log_writer_dropped(w), 0);
    sl__log_writer_stop(w, 1000);
    sl__log_writer_free(w);
    free(got);
    close(p[0]);
}

static void a_full_ring_drops_whole_lines_and_counts_them(void)
{
    struct sl_log_writer *w = sl__log_writer_start(110); /* ten lines */
    uint64_t lost = 0;
    int p[2];
    size_t n;
    char *got, buf[16];

    CHECK(pipe(p) == 0);
    for (int i = 0; i < 25; i++) {
        snprintf(buf, sizeof(buf), "line %05d\n", i);
        lost += sl__log_writer_append(w, buf, 11);
    }
    /* A batch that straddles the end: the whole lines that fit go in. */
    lost += sl__log_writer_append(w, "a\nb\n", 4);
    CHECK_EQ_UINT(lost, 17);
    CHECK_EQ_UINT(sl__log_writer_dropped(w), 17);
    sl__log_writer_set_fd(w, p[1], 5000);
    sl__log_writer_stop(w, 1000);
    sl__log_writer_free(w);
    got = drain(p[0], &n);
    CHECK_EQ_UINT(lines_in(got, n), 10);
    CHECK(strncmp(got, "line 00000\n", 11) == 0);
    CHECK(strncmp(got + 99, "line 00009\n", 11) == 0);
    free(got);
    close(p[0]);
}

static void a_new_descriptor_takes_over_exactly_after_the_earlier_lines(void)
{
    struct sl_log_writer *w = sl__log_writer_start(1 << 16);
    int a[2], b[2];
    size_t na, nb;
    char *ga, *gb;

    CHECK(pipe(a) == 0 && pipe(b) == 0);
    sl__log_writer_set_fd(w, a[1], 0);
    append_lines(w, 0, 100);
    CHECK_EQ_INT(sl__log_writer_set_fd(w, b[1], 5000), 0);
    /* set_fd waited: the old one has every earlier line already. */
    ga = drain(a[0], &na);
    CHECK_EQ_UINT(na, 100 * 11);
    append_lines(w, 100, 150);
    sl__log_writer_stop(w, 1000);
    sl__log_writer_free(w);
    gb = drain(b[0], &nb);
    CHECK_EQ_UINT(nb, 50 * 11);
    CHECK(strncmp(ga + 99 * 11, "line 00099\n", 11) == 0);
    CHECK(strncmp(gb, "line 00100\n", 11) == 0);
    free(ga);
    free(gb);
    close(a[0]);
    close(b[0]);
}

static void a_smaller_ring_keeps_the_oldest_whole_lines(void)
{
    struct sl_log_writer *w = sl__log_writer_start(1000);
    int p[2];
    size_t n;
    char *got;

    CHECK(pipe(p) == 0);
    append_lines(w, 0, 10);
    sl__log_writer_resize(w, 60); /* five whole lines and a piece */
    CHECK_EQ_UINT(sl__log_writer_dropped(w), 5);
    append_lines(w, 10, 12); /* neither fits: 55 + 11 > 60 */
    CHECK_EQ_UINT(sl__log_writer_dropped(w), 7);
    sl__log_writer_set_fd(w, p[1], 5000);
    sl__log_writer_stop(w, 1000);
    sl__log_writer_free(w);
    got = drain(p[0], &n);
    CHECK_EQ_UINT(n, 5 * 11);
    CHECK(strncmp(got + 44, "line 00004\n", 11) == 0);
    free(got);
    close(p[0]);
}

/* A pipe nobody reads: with O_NONBLOCK (a FIFO we opened) or without (a
 * stdout we inherited). Stop gives up, and every line is either in the
 * pipe or counted as dropped. */
static void stuck_pipe(bool nonblocking)
{
    struct sl_log_writer *w = sl__log_writer_start(8192);
    int p[2];
    size_t n;
    char *got;

    CHECK(pipe(p) == 0);
    if (nonblocking)
        fcntl(p[1], F_SETFL, O_NONBLOCK);
    sl__log_writer_set_fd(w, p[1], 0);
    append_lines(w, 0, 20000); /* 220,000 bytes: more than pipe and ring hold */
    sl__log_writer_stop(w, 200);
    got = drain(p[0], &n);
    CHECK(n > 0 && n < 220000);
    CHECK(sl__log_writer_dropped(w) > 0);
    CHECK_EQ_UINT(lines_in(got, n) + sl__log_writer_dropped(w), 20000);
    CHECK_EQ_UINT(lines_in(got, n), sl__log_writer_written(w));
    sl__log_writer_free(w);
    free(got);
    close(p[0]);
}

static void a_non_blocking_pipe_nobody_reads_never_hangs_stop(void)
{
    stuck_pipe(true);
}

static void a_blocking_pipe_nobody_reads_never_hangs_stop(void)
{
    stuck_pipe(false);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(lines_reach_a_pipe_whole_and_in_order);
    RUN(lines_appended_before_a_descriptor_wait_for_it);
    RUN(a_full_ring_drops_whole_lines_and_counts_them);
    RUN(a_new_descriptor_takes_over_exactly_after_the_earlier_lines);
    RUN(a_smaller_ring_keeps_the_oldest_whole_lines);
    RUN(a_non_blocking_pipe_nobody_reads_never_hangs_stop);
    RUN(a_blocking_pipe_nobody_reads_never_hangs_stop);
    return check_done();
}
