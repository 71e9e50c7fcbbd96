/*
 * sluice-paced: HTTP/1.1 load at a fixed rate, with latency measured from
 * the schedule (coordinated omission corrected, as wrk2 does).
 *
 * Request k is due at t0 + k / rate, whatever happened before it. A due
 * request goes out on any idle keep-alive connection; when every connection
 * is busy it waits, and that wait is part of its latency, which runs from
 * the time it was due to the end of its response. A server that stalls
 * therefore shows every request it held up, not only the one it stalled
 * on. The schedule is kept by a timerfd (nanosecond deadlines, timer slack
 * 1 us) watched by the libuv loop; how late requests left compared with
 * their schedule is reported too (send_lag), so a client that could not
 * keep up is seen, not mistaken for a slow server.
 *
 * With -g, the timer fires only on a grid of that many microseconds, and
 * the requests due since leave together (a response arriving sends what is
 * due at once): fewer wake-ups, for a send lag bounded by -g.
 *
 * The first -w seconds warm up (sent, not recorded). After the last due
 * time, responses still missing get -T seconds; then each request still
 * unanswered or never sent is recorded with the latency it had reached
 * (a lower bound) and counted in "unfinished". Output: one JSON object on
 * stdout, latencies in microseconds.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>
#include <uv.h>

#include "hist.h"

struct conn {
    uv_tcp_t tcp;
    uv_connect_t req;
    llhttp_t parser;
    uint64_t k; /* the request in flight */
    bool busy, open, closing, drop;
};

static struct {
    const char *addr, *path, *host;
    int port, conns;
    double rate, duration, warmup, drain, tick;
} opt = {"127.0.0.1", "/", NULL, 0, 50, 1000, 5, 1, 5, 0};

static struct {
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_timer_t deadline;
    uv_signal_t sig[2];
    int tfd;
    struct conn *c;
    struct conn **idle;
    int nidle, nconnected;
    uint64_t t0, armed, k_next, k_warm, k_end, window_end; /* armed: timerfd deadline, 0: none */
    bool started, stopping;
    char *request;
    size_t request_len;
    uint64_t sent, done, done_in_window, non2xx, errors, unfinished;
    struct hist lat, lag;
    char rbuf[64 * 1024];
} g;

static void dispatch(void);
static void conn_open(struct conn *c);

/* When request k is due: t0 + k * 1e9 / rate, without drift. */
static uint64_t due_at(uint64_t k)
{
    return g.t0 + (uint64_t)((double)k * 1e9 / opt.rate);
}

/* Have the timerfd fire at when_ns (rounded up to the -g grid), unless it
 * already fires no later: re-arming costs a syscall and, in a VM, a timer
 * reprogramming exit, so it is done only when the deadline moves earlier. */
static void arm(uint64_t when_ns)
{
    if (opt.tick > 0) {
        uint64_t t = (uint64_t)(opt.tick * 1e3);
        when_ns = (when_ns + t - 1) / t * t;
    }
    if (g.armed != 0 && g.armed <= when_ns)
        return;
    struct itimerspec its = {{0, 0},
                             {(time_t)(when_ns / 1000000000u), (long)(when_ns % 1000000000u)}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
    g.armed = when_ns;
}

static void finish_request(struct conn *c, uint64_t now)
{
    c->busy = false;
    if (c->k >= g.k_warm) {
        hist_add(&g.lat, now > due_at(c->k) ? now - due_at(c->k) : 0);
        if (now <= g.window_end)
            g.done_in_window++;
    }
    g.done++;
}

static int on_complete(llhttp_t *p)
{
    struct conn *c = p->data;

    if (p->status_code < 200 || p->status_code > 399)
        g.non2xx++;
    finish_request(c, uv_hrtime());
    if (!llhttp_should_keep_alive(p))
        c->drop = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {.on_message_complete = on_complete};

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    c->closing = false;
    if (!g.stopping)
        conn_open(c); /* a new connection takes its place */
}

static void stop_all(void);

/* Close c (failed: counted as an error; a request in flight always is); a
 * new connection replaces it, except before the start, where a connection
 * that fails stops the run (nothing listens). */
static void conn_close(struct conn *c, bool failed)
{
    if (g.stopping)
        return;
    if (!g.started && failed) {
        g.errors++;
        stop_all();
        return;
    }
    if (c->busy) {
        c->busy = false;
        g.errors++;
    } else if (failed) {
        g.errors++;
    }
    for (int i = 0; i < g.nidle; i++)
        if (g.idle[i] == c)
            g.idle[i] = g.idle[--g.nidle];
    if (c->open)
        g.nconnected--;
    c->open = false;
    if (!c->closing && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    (void)h;
    (void)size;
    *b = uv_buf_init(g.rbuf, sizeof g.rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (n < 0) {
        conn_close(c, c->busy || n != UV_EOF);
        return;
    }
    const char *p = b->base, *end = b->base + n;
    while (p < end) {
        llhttp_errno_t e = llhttp_execute(&c->parser, p, end - p);
        if (e == HPE_PAUSED) {
            p = llhttp_get_error_pos(&c->parser);
            llhttp_resume(&c->parser);
            if (c->drop) {
                c->drop = false;
                conn_close(c, false);
                return;
            }
            g.idle[g.nidle++] = c;
            continue;
        }
        if (e != HPE_OK || !c->busy) { /* bad response, or one nobody asked for */
            conn_close(c, true);
            return;
        }
        break;
    }
    dispatch();
}

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows as a read error */
    free(w);
}

static void send_on(struct conn *c, uint64_t k)
{
    uv_buf_t b = uv_buf_init(g.request, g.request_len);
    uint64_t now = uv_hrtime();

    c->busy = true;
    c->k = k;
    g.sent++;
    if (k >= g.k_warm)
        hist_add(&g.lag, now > due_at(k) ? now - due_at(k) : 0);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == (int)g.request_len)
        return;
    if (r < 0 && r != UV_EAGAIN) {
        conn_close(c, true);
        return;
    }
    /* Rare (a full socket buffer): the rest, from the static request. */
    b = uv_buf_init(g.request + (r > 0 ? r : 0), g.request_len - (r > 0 ? r : 0));
    uv_write_t *wr = malloc(sizeof *wr);
    if (wr == NULL || uv_write(wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(wr);
        conn_close(c, true);
    }
}

/* Send every due request there is an idle connection for; then wake up
 * when the next one is due, unless due ones are waiting for a connection
 * (a response will call again). */
static void dispatch(void)
{
    if (!g.started || g.stopping)
        return;
    uint64_t now = uv_hrtime();
    while (g.k_next < g.k_end && due_at(g.k_next) <= now && g.nidle > 0)
        send_on(g.idle[--g.nidle], g.k_next++);
    if (g.k_next < g.k_end && due_at(g.k_next) > now)
        arm(due_at(g.k_next));
}

static void on_tick(uv_poll_t *p, int status, int events)
{
    uint64_t expirations;

    (void)p;
    (void)status;
    (void)events;
    if (read(g.tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        return;
    g.armed = 0;
    dispatch();
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    if (status != 0) {
        conn_close(c, true);
        return;
    }
    c->open = true;
    g.nconnected++;
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    g.idle[g.nidle++] = c;
    if (!g.started && g.nconnected == opt.conns) {
        g.started = true;
        g.t0 = uv_hrtime() + 1000000;
        g.window_end = due_at(g.k_end);
    }
    dispatch();
}

static void conn_open(struct conn *c)
{
    struct sockaddr_in sa;

    uv_ip4_addr(opt.addr, opt.port, &sa);
    uv_tcp_init(g.loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    c->req.data = c;
    c->closing = false;
    if (uv_tcp_connect(&c->req, &c->tcp, (struct sockaddr *)&sa, on_connect) != 0)
        conn_close(c, true);
}

static void stop_all(void)
{
    g.stopping = true;
    uv_poll_stop(&g.poll);
    uv_close((uv_handle_t *)&g.poll, NULL);
    uv_close((uv_handle_t *)&g.deadline, NULL);
    for (int k = 0; k < 2; k++)
        uv_close((uv_handle_t *)&g.sig[k], NULL);
    for (int i = 0; i < opt.conns; i++)
        if (!uv_is_closing((uv_handle_t *)&g.c[i].tcp))
            uv_close((uv_handle_t *)&g.c[i].tcp, NULL);
}

/* Every 10 ms: done once every due request is answered, or at the drain
 * deadline, where what is missing is recorded with the latency it reached. */
static void on_check(uv_timer_t *t)
{
    (void)t;
    if (!g.started || g.stopping)
        return;
    uint64_t now = uv_hrtime();
    bool busy = false;
    for (int i = 0; i < opt.conns; i++)
        busy |= g.c[i].busy;
    if (g.k_next == g.k_end && !busy) {
        stop_all();
        return;
    }
    if (now < g.window_end + (uint64_t)(opt.drain * 1e9))
        return;
    for (int i = 0; i < opt.conns; i++)
        if (g.c[i].busy && g.c[i].k >= g.k_warm) {
            hist_add(&g.lat, now - due_at(g.c[i].k));
            g.unfinished++;
        }
    for (uint64_t k = g.k_next > g.k_warm ? g.k_next : g.k_warm; k < g.k_end; k++) {
        hist_add(&g.lat, now - due_at(k));
        g.unfinished++;
    }
    stop_all();
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (!g.stopping)
        stop_all();
}

static void print_hist(const char *name, const struct hist *h, bool last)
{
    printf("  \"%s\": {\"count\": %" PRIu64 ", \"mean\": %.1f, \"p50\": %.1f, \"p90\": %.1f, "
           "\"p99\": %.1f, \"p99.9\": %.1f, \"max\": %.1f}%s\n",
           name, h->n, hist_mean(h) / 1e3, hist_pct(h, 50) / 1e3, hist_pct(h, 90) / 1e3,
           hist_pct(h, 99) / 1e3, hist_pct(h, 99.9) / 1e3, h->max / 1e3, last ? "" : ",");
}

static void report(void)
{
    printf("{\n  \"rate_target\": %.1f,\n  \"rate_achieved\": %.1f,\n  \"connections\": %d,\n"
           "  \"duration_s\": %.3f,\n  \"sent\": %" PRIu64 ",\n  \"completed\": %" PRIu64 ",\n"
           "  \"non2xx\": %" PRIu64 ",\n  \"errors\": %" PRIu64 ",\n  \"unfinished\": %" PRIu64
           ",\n",
           opt.rate, (double)g.done_in_window / opt.duration, opt.conns, opt.duration, g.sent,
           g.done, g.non2xx, g.errors, g.unfinished);
    print_hist("latency_us", &g.lat, false);
    print_hist("send_lag_us", &g.lag, true);
    printf("}\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-paced -p PORT [-a ADDR] [-c CONNS] [-r RATE] [-d SECONDS]\n"
               "                    [-w SECONDS] [-T SECONDS] [-g USEC] [-P PATH] [-H HOST]\n"
               "  -c  keep-alive connections (default 50)\n"
               "  -r  requests per second, all connections together (default 1000)\n"
               "  -d  measured seconds (default 5), after -w seconds of warm-up (default 1)\n"
               "  -T  seconds the last responses may take after the schedule ends (default 5)\n"
               "  -g  the timer fires on a grid of USEC microseconds (default 0: at each due\n"
               "      time); requests due meanwhile leave together, late by at most USEC\n"
               "  -P  request path (default /), -H Host header (default ADDR:PORT)\n"
               "prints one JSON object: rates, counts, latency_us and send_lag_us\n"
               "(count, mean, p50, p90, p99, p99.9, max); latency runs from the time\n"
               "each request was due. Exit status 3 when requests failed or were lost.\n");
}

static int parse_args(int argc, char **argv)
{
    int o;

    while ((o = getopt(argc, argv, "a:p:c:r:d:w:T:P:H:g:h")) != -1) {
        switch (o) {
        case 'a':
            opt.addr = optarg;
            break;
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'c':
            opt.conns = atoi(optarg);
            break;
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'T':
            opt.drain = atof(optarg);
            break;
        case 'P':
            opt.path = optarg;
            break;
        case 'H':
            opt.host = optarg;
            break;
        case 'g':
            opt.tick = atof(optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || opt.port <= 0 || opt.port > 65535 || opt.conns < 1 ||
        opt.conns > 100000 || opt.rate <= 0 || opt.duration <= 0 || opt.warmup < 0 ||
        opt.drain < 0 || strpbrk(opt.path, "\r\n ") || (opt.host && strpbrk(opt.host, "\r\n")))
        return -1;
    return 0;
}

static int setup(void)
{
    char host[300];

    snprintf(host, sizeof host, "%s:%d", opt.addr, opt.port);
    if (asprintf(&g.request, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", opt.path,
                 opt.host ? opt.host : host) < 0)
        return -1;
    g.request_len = strlen(g.request);
    g.k_warm = (uint64_t)(opt.rate * opt.warmup);
    g.k_end = g.k_warm + (uint64_t)(opt.rate * opt.duration);
    g.c = calloc(opt.conns, sizeof *g.c);
    g.idle = calloc(opt.conns, sizeof *g.idle);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (!g.c || !g.idle || g.tfd < 0)
        return -1;
    prctl(PR_SET_TIMERSLACK, 1000UL);
    g.loop = uv_default_loop();
    uv_poll_init(g.loop, &g.poll, g.tfd);
    uv_poll_start(&g.poll, UV_READABLE, on_tick);
    uv_timer_init(g.loop, &g.deadline);
    for (int k = 0; k < 2; k++) {
        uv_signal_init(g.loop, &g.sig[k]);
        uv_signal_start(&g.sig[k], on_signal, k ? SIGTERM : SIGINT);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (setup() != 0) {
        fprintf(stderr, "sluice-paced: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < opt.conns; i++)
        conn_open(&g.c[i]);
    uv_timer_start(&g.deadline, on_check, 10, 10);
    uv_run(g.loop, UV_RUN_DEFAULT);
    report();
    close(g.tfd);
    free(g.request);
    free(g.c);
    free(g.idle);
    return g.errors || g.unfinished ? 3 : 0;
}
