/*
 * Unit tests for gateway/src/base/log_writer.c: the background writer of
 * log lines, over real pipes. A pipe nobody reads stands for a stuck sink
 * (a FIFO without a reader, a full stdout pipe): appending must not block,
 * what does not fit must be dropped and counted exactly, and stop must
 * return anyway.
 */
#include "base/log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
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

/* The lines readable from fd now; what was read is gone. */
static size_t drain_lines(int fd)
{
    size_t n, lines;
    char *got = drain(fd, &n);

    lines = lines_in(got, n);
    free(got);
    return lines;
}

/* Fill the pipe whose write end is fd until it takes nothing more, with
 * bytes that are no line ('x', no newline), and leave fd blocking (as a
 * stdout we inherited is): page-sized writes leave no room at all, so a
 * poll() for POLLOUT does not answer until a reader reads. */
static void fill_pipe(int fd)
{
    char page[4096];

    memset(page, 'x', sizeof(page));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (write(fd, page, sizeof(page)) > 0)
        ;
    fcntl(fd, F_SETFL, 0);
}

static void sleep_ms(long ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    nanosleep(&t, NULL);
}

/* Wait up to 5 s for the writer to have dropped n lines in all. */
static uint64_t wait_dropped(struct sl_log_writer *w, uint64_t n)
{
    for (int i = 0; i < 500 && sl__log_writer_dropped(w) < n; i++)
        sleep_ms(10);
    return sl__log_writer_dropped(w);
}

/* How often text occurs in the file at path. */
static int count_in_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int c = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        c += strstr(line, text) != NULL;
    fclose(f);
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
    sl__log_writer_set_fd(w, p[1], NULL, 0);
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
    CHECK_EQ_INT(sl__log_writer_set_fd(w, p[1], NULL, 5000), 0);
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
    sl__log_writer_set_fd(w, p[1], NULL, 5000);
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
    sl__log_writer_set_fd(w, a[1], NULL, 0);
    append_lines(w, 0, 100);
    CHECK_EQ_INT(sl__log_writer_set_fd(w, b[1], NULL, 5000), 0);
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
    sl__log_writer_set_fd(w, p[1], NULL, 5000);
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
    sl__log_writer_set_fd(w, p[1], NULL, 0);
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

/* A full stdout pipe whose reader died polls POLLERR, never POLLOUT: the
 * writer must still try write(), see EPIPE, drop and count the lines, say
 * so once, and then rest between tries instead of spinning on poll(). */
static void a_full_pipe_whose_reader_is_gone_drops_its_lines_and_is_not_spun_on(void)
{
    struct sl_log_writer *w = sl__log_writer_start(1 << 16);
    char log_path[] = "/tmp/sluice-test-log-writer-XXXXXX";
    const char *warning = "access log stdout: write failed: Broken pipe";
    int p[2], log_fd = mkstemp(log_path);
    uint64_t tries;

    CHECK(log_fd >= 0 && sl__log_open(log_path) == 0);
    CHECK(pipe(p) == 0);
    fill_pipe(p[1]);
    sl__log_writer_set_fd(w, p[1], "access log stdout", 0);
    append_lines(w, 0, 10); /* the writer waits for room that never comes */
    close(p[0]);
    /* EPIPE: the lines are dropped and counted, not held forever. */
    CHECK_EQ_UINT(wait_dropped(w, 10), 10);
    /* More lines over 300 ms: the writer rests after each failure (50 ms,
     * doubling), so it tries a handful of times, not a million. Only an
     * upper bound: a busy machine makes it fewer, never more. */
    tries = sl__log_writer_tries(w);
    for (int i = 10; i < 40; i++) {
        append_lines(w, i, i + 1);
        sleep_ms(10);
    }
    CHECK(sl__log_writer_tries(w) - tries <= 40);
    /* Stop tries what is left once, without resting, and drops it. */
    sl__log_writer_stop(w, 1000);
    CHECK_EQ_UINT(sl__log_writer_dropped(w), 40);
    CHECK_EQ_UINT(sl__log_writer_written(w), 0);
    sl__log_writer_free(w);
    /* One warning for the whole failing streak, naming sink and error. */
    CHECK_EQ_INT(count_in_file(log_path, warning), 1);
    CHECK_EQ_INT(count_in_file(log_path, "[warn]"), 1);
    sl__log_open(NULL);
    close(log_fd);
    unlink(log_path);
}

/* SIGUSR1 against a sink that takes nothing: the first reopen waits (and
 * times out), every later one replaces the descriptor still waiting, at
 * once, so descriptors do not pile up and the caller is held once. */
static void a_reopen_while_a_switch_waits_takes_its_place_at_once(void)
{
    struct sl_log_writer *w = sl__log_writer_start(1 << 16);
    int a[2], b[2], c[2], d[2], e[2];
    size_t n, to_a;
    char *got, one;

    CHECK(pipe(a) == 0 && pipe(b) == 0 && pipe(c) == 0 && pipe(d) == 0);
    fill_pipe(a[1]);
    sl__log_writer_set_fd(w, a[1], "a", 0);
    append_lines(w, 0, 10);
    /* The writer switched to a and polls it: stuck behind the full pipe. */
    for (int i = 0; i < 500 && sl__log_writer_tries(w) == 0; i++)
        sleep_ms(10);
    CHECK_EQ_INT(sl__log_writer_reopen(w, b[1], "b", 200), -ETIMEDOUT);
    append_lines(w, 10, 20);
    CHECK_EQ_INT(sl__log_writer_reopen(w, c[1], "c", 200), -EINPROGRESS);
    /* b was closed unused: its read end sees the end, not "nothing yet". */
    fcntl(b[0], F_SETFL, O_NONBLOCK);
    CHECK_EQ_INT(read(b[0], &one, 1), 0);
    append_lines(w, 20, 25);
    CHECK_EQ_INT(sl__log_writer_reopen(w, d[1], "d", 200), -EINPROGRESS);
    fcntl(c[0], F_SETFL, O_NONBLOCK);
    CHECK_EQ_INT(read(c[0], &one, 1), 0);
    append_lines(w, 25, 30);
    /* A reader comes: a gets its lines, d every line after the first
     * reopen up to the next. */
    to_a = drain_lines(a[0]);
    for (int i = 0; i < 500 && sl__log_writer_written(w) < 30; i++)
        sleep_ms(10);
    CHECK_EQ_UINT(sl__log_writer_written(w), 30);
    /* Unstuck, a reopen waits for the earlier lines again. */
    CHECK(pipe(e) == 0);
    append_lines(w, 30, 35);
    CHECK_EQ_INT(sl__log_writer_reopen(w, e[1], "e", 5000), 0);
    append_lines(w, 35, 40);
    sl__log_writer_stop(w, 1000);
    to_a += drain_lines(a[0]);
    CHECK_EQ_UINT(to_a, 10);
    got = drain(d[0], &n);
    CHECK_EQ_UINT(n, 25 * 11);
    CHECK(strncmp(got, "line 00010\n", 11) == 0);
    CHECK_EQ_UINT(drain_lines(e[0]), 5);
    CHECK_EQ_UINT(sl__log_writer_dropped(w), 0);
    sl__log_writer_free(w);
    free(got);
    close(a[0]);
    close(b[0]);
    close(c[0]);
    close(d[0]);
    close(e[0]);
}

/* Lines appended after set_fd(-1) but before its switch happened, when
 * another descriptor comes next, wait for that one (they had nowhere to
 * go): they are not written to -1 and lost. */
static void lines_sent_nowhere_wait_for_the_next_descriptor(void)
{
    struct sl_log_writer *w = sl__log_writer_start(1 << 16);
    int a[2], b[2];
    size_t n, to_a;
    char *got;

    CHECK(pipe(a) == 0 && pipe(b) == 0);
    fill_pipe(a[1]); /* so the switch to -1 cannot happen before set_fd(b) */
    sl__log_writer_set_fd(w, a[1], "a", 0);
    append_lines(w, 0, 10);
    sl__log_writer_set_fd(w, -1, NULL, 0);
    append_lines(w, 10, 15);
    sl__log_writer_set_fd(w, b[1], "b", 0);
    append_lines(w, 15, 18);
    to_a = drain_lines(a[0]);
    sl__log_writer_stop(w, 1000);
    to_a += drain_lines(a[0]);
    CHECK_EQ_UINT(to_a, 10);
    got = drain(b[0], &n);
    CHECK_EQ_UINT(n, 8 * 11);
    CHECK(strncmp(got, "line 00010\n", 11) == 0);
    CHECK_EQ_UINT(sl__log_writer_dropped(w), 0);
    CHECK_EQ_UINT(sl__log_writer_written(w), 18);
    sl__log_writer_free(w);
    free(got);
    close(a[0]);
    close(b[0]);
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
    RUN(a_full_pipe_whose_reader_is_gone_drops_its_lines_and_is_not_spun_on);
    RUN(a_reopen_while_a_switch_waits_takes_its_place_at_once);
    RUN(lines_sent_nowhere_wait_for_the_next_descriptor);
    return check_done();
}
