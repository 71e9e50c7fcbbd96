/*
 * sluice-origin: a small, fast HTTP/1.1 origin server.  It is the demo
 * backend of the quick start, the upstream of the end-to-end tests and the
 * origin of the benchmarks, so it must be both correct and cheap.
 *
 * Each worker thread runs its own libuv loop with its own SO_REUSEPORT
 * listener; the kernel spreads connections and threads share nothing but
 * two counters.  Behaviour is chosen by the path and query string, see
 * usage().  Bodies of any size are streamed from a static buffer with
 * backpressure, so memory stays flat whatever is asked for.
 *
 * This file holds the options, the listeners and the workers, and main().
 * Connections (reading, writing, closing) and the request parser are in
 * conn.c; responses are built in respond.c; /echo, /headers, /sink and
 * /stats in echo.c; the WebSocket echo (/ws) is in ws.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include "origin.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "respond.h"

enum { BACKLOG = 4096 };

struct cfg cfg = {"127.0.0.1", "origin", 9000, 1, false, false, NULL, 0};

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->data)
        conn_close(h->data, false);
    else if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void close_plain(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_stop(uv_async_t *a)
{
    uv_walk(a->loop, close_any, NULL);
}

static void run_worker(void *arg)
{
    struct worker *w = arg;

    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Sockets are made by hand because libuv 1.44 cannot set SO_REUSEPORT.
 * With -p 0 the first socket picks the port and the rest share it. */
static int open_listener(struct sockaddr_storage *ss)
{
    socklen_t len = sizeof *ss;
    int fd, one = 1;

    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)ss,
             ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) <
            0 ||
        listen(fd, BACKLOG) < 0 || getsockname(fd, (struct sockaddr *)ss, &len) < 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct worker *w = sig->data;

    (void)signum;
    for (int i = 0; i < cfg.threads; i++)
        uv_async_send(&w[i].stop);
    uv_walk(sig->loop, close_plain, NULL);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-origin [-a ADDR] [-p PORT] [-t THREADS] [-n NAME] [-q] [-d]\n"
               "  -a ADDR     listen address (default 127.0.0.1)\n"
               "  -p PORT     port, 0 picks a free one (default 9000)\n"
               "  -t THREADS  worker threads (default 1)\n"
               "  -n NAME     reported in X-Origin (default origin)\n"
               "  -q          quiet\n"
               "  -d          log 'REQ <usec> <METHOD> <TARGET>' per request to stderr\n"
               "paths: /healthz /stats /echo /headers /sink /ws, anything else: hello\n"
               "query: size= json=1 status= delay= chunked=1 chunk= trailer=1 header=N:V\n"
               "       close=1 reset=1 reset_after= hang=1\n");
}

/* Read the command line into cfg.  Returns -1 to go on, or the status to
 * exit with at once: 0 after -h, 2 after a bad flag (usage on stderr). */
static int parse_args(int argc, char **argv)
{
    char *end;
    int opt;

    while ((opt = getopt(argc, argv, "a:p:t:n:qdh")) != -1) {
        switch (opt) {
        case 'a':
            cfg.addr = optarg;
            break;
        case 'n':
            cfg.name = optarg;
            break;
        case 'q':
            cfg.quiet = true;
            break;
        case 'd':
            cfg.debug = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'p':
            cfg.port = strtol(optarg, &end, 10);
            if (*end || end == optarg || cfg.port < 0 || cfg.port > 65535)
                goto bad_usage;
            break;
        case 't':
            cfg.threads = strtol(optarg, &end, 10);
            if (*end || end == optarg || cfg.threads < 1 || cfg.threads > 1024)
                goto bad_usage;
            break;
        default:
            goto bad_usage;
        }
    }
    if (optind != argc || strpbrk(cfg.name, "\r\n"))
        goto bad_usage;
    return -1;

bad_usage:
    usage(stderr);
    return 2;
}

/* The whole default response, made once: the hot path sends it as it is.
 * Returns 0, or -1 with errno set. */
static int make_hello(void)
{
    int n = asprintf(&cfg.hello,
                     "HTTP/1.1 200 OK\r\nX-Origin: %s\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                     "Hello, world!",
                     cfg.name);
    if (n < 0)
        return -1;
    cfg.hello_len = n;
    return 0;
}

/* Give each of the cfg.threads workers in w its loop and its own listener
 * on *ss (with port 0 the first one picks the port, written back to *ss).
 * Returns 0, or -1 with errno set. */
static int start_listeners(struct worker *w, struct sockaddr_storage *ss)
{
    int fd, err;

    for (int i = 0; i < cfg.threads; i++) {
        if ((fd = open_listener(ss)) < 0)
            return -1;
        uv_loop_init(&w[i].loop);
        w[i].loop.data = &w[i];
        uv_tcp_init(&w[i].loop, &w[i].server);
        uv_async_init(&w[i].loop, &w[i].stop, on_stop);
        int r = uv_tcp_open(&w[i].server, fd);
        if (r == 0)
            r = uv_listen((uv_stream_t *)&w[i].server, BACKLOG, on_accept);
        if (r != 0) {
            err = -r; /* libuv errors are negated errnos on Unix */
            close(fd);
            errno = err;
            return -1;
        }
    }
    return 0;
}

/* The line the tests and scripts wait for: "listening on ADDR:PORT". */
static void announce(const struct sockaddr_storage *ss)
{
    int port = ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                               : ((const struct sockaddr_in *)ss)->sin_port);

    printf(ss->ss_family == AF_INET6 ? "listening on [%s]:%d\n" : "listening on %s:%d\n", cfg.addr,
           port);
    fflush(stdout);
}

/* Start the worker threads and run the main loop, which only waits for
 * SIGINT or SIGTERM and then stops the workers; returns when they have all
 * ended and their loops are closed. */
static void run_workers(struct worker *w)
{
    uv_loop_t loop;
    uv_signal_t sig[2];

    uv_loop_init(&loop);
    for (int k = 0; k < 2; k++) {
        uv_signal_init(&loop, &sig[k]);
        sig[k].data = w;
        uv_signal_start(&sig[k], on_signal, k ? SIGTERM : SIGINT);
    }
    for (int i = 0; i < cfg.threads; i++)
        uv_thread_create(&w[i].tid, run_worker, &w[i]);
    uv_run(&loop, UV_RUN_DEFAULT);

    for (int i = 0; i < cfg.threads; i++) {
        uv_thread_join(&w[i].tid);
        uv_loop_close(&w[i].loop);
        free(w[i].scratch.p);
    }
    uv_loop_close(&loop);
}

int main(int argc, char **argv)
{
    struct sockaddr_storage ss = {0};
    struct worker *w = NULL;
    int rc;

    if ((rc = parse_args(argc, argv)) >= 0)
        return rc;
    if (uv_ip4_addr(cfg.addr, cfg.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(cfg.addr, cfg.port, (struct sockaddr_in6 *)&ss) != 0) {
        fprintf(stderr, "sluice-origin: bad address %s\n", cfg.addr);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    respond_init();
    if (make_hello() != 0 || !(w = calloc(cfg.threads, sizeof *w)) ||
        start_listeners(w, &ss) != 0) {
        fprintf(stderr, "sluice-origin: cannot listen on %s:%d: %s\n", cfg.addr, cfg.port,
                strerror(errno));
        return 1;
    }
    announce(&ss);
    run_workers(w);

    if (!cfg.quiet)
        fprintf(stderr,
                "sluice-origin: exiting after %" PRIu64 " requests on %" PRIu64 " connections\n",
                atomic_load(&nreq), atomic_load(&nconn));
    free(w);
    free(cfg.hello);
    return 0;
}
