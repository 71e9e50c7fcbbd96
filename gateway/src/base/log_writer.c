/*
 * The background log writer. Appenders copy whole lines into a byte ring
 * under a mutex held only for the copy; the writer thread takes up to a
 * batch at a time out of the ring (so the ring is never read outside the
 * lock and can be resized) and writes it with write(2):
 *
 * - a regular file: the whole batch at once (a slow disk blocks only this
 *   thread);
 * - a descriptor we opened non-blocking (a FIFO): EAGAIN waits in poll(2)
 *   with a timeout, never spinning;
 * - a blocking pipe, terminal or socket we did not open (stdout: its flags
 *   are shared with whoever else holds it, so we leave them alone): poll(2)
 *   for POLLOUT, then at most PIPE_BUF bytes, which a pipe that polls
 *   writable takes without blocking. A full pipe whose reader is gone polls
 *   POLLERR and never POLLOUT: that too goes to write(2), which answers
 *   EPIPE at once (SIGPIPE is blocked in this thread and ignored by main).
 *
 * A write that fails drops the rest of its batch (counted) and says so once
 * per failing streak; the next batch waits RETRY_MIN_MS, doubling up to
 * RETRY_MAX_MS, so a sink that stays broken costs a few calls a second,
 * never a spinning thread.
 *
 * The counters `appended` and `done` are byte positions in the stream of
 * everything ever accepted: a descriptor switch is due when `done` reaches
 * the `appended` of the moment it was asked for. Switches queue up in the
 * order asked, so each descriptor gets exactly the lines meant for it.
 */
#include "base/log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define BATCH        (64 * 1024)
#define POLL_MS      50
#define RETRY_MIN_MS 50   /* the rest after a failed write, doubling... */
#define RETRY_MAX_MS 2000 /* ...up to this */
#define STOP_FACTOR  5    /* the whole stop gives up after this many give_up_ms */
#define NS_PER_MS    1000000ull

enum fd_kind { FD_FILE, FD_NONBLOCK, FD_BLOCKING };

/* A descriptor waiting to take over once `done` reaches `at`. */
struct pending {
    int fd;
    enum fd_kind kind;
    char *name; /* the sink, for the warning a failed write logs */
    uint64_t at;
    struct pending *next;
};

struct sl_log_writer {
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* the writer waits here for lines, a switch, a stop */
    pthread_cond_t moved; /* set_fd() and stop() wait here for progress */
    pthread_t thread;

    /* Under lock. */
    char *ring;
    size_t cap, head, len; /* queued bytes: len of them from head, wrapping */
    uint64_t appended;     /* bytes ever accepted */
    uint64_t done;         /* bytes ever taken out and written or dropped */
    uint64_t stuck_at;     /* a wait for done to reach this timed out */
    int fd;
    enum fd_kind kind;
    struct pending *pending, **pending_tail; /* oldest first */
    bool idle;                               /* the writer waits on wake */
    bool resting;                            /* ... after a failed write: lines do not wake it */
    bool stopping, exited;
    bool joined; /* stop() ended the thread: w may be freed */

    /* The writer thread's own. */
    char *batch;
    char *name;           /* the sink written to now */
    uint64_t progress_ns; /* when the descriptor last took a byte */
    bool failing;         /* the last write failed (say so once) */
    uint64_t retry_ns;    /* while failing: when to try the next batch */
    uint64_t retry_ms;    /* the rest after the next failure */

    _Atomic uint64_t stop_ns; /* when the stop began; 0: running */
    uint64_t give_up_ns;
    _Atomic uint64_t dropped, written, tries;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL) {
        fprintf(stderr, "sluice: out of memory (log writer, %zu bytes)\n", n);
        abort();
    }
    return p;
}

static uint64_t count_lines(const char *p, size_t n)
{
    const char *end = p + n;
    uint64_t lines = 0;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
    }
    return lines;
}

static enum fd_kind fd_kind(int fd)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        return FD_FILE;
    return fl >= 0 && (fl & O_NONBLOCK) ? FD_NONBLOCK : FD_BLOCKING;
}

/* A stop began and the descriptor has taken nothing for give_up_ns (or the
 * stop has lasted STOP_FACTOR times that): what is left is dropped. */
static bool gave_up(struct sl_log_writer *w)
{
    uint64_t stop = atomic_load(&w->stop_ns), now, since;

    if (stop == 0)
        return false;
    now = sl__mono_ns();
    since = w->progress_ns > stop ? w->progress_ns : stop;
    return now - since >= w->give_up_ns || now - stop >= STOP_FACTOR * w->give_up_ns;
}

/* Wait up to POLL_MS for fd to take bytes; true if write() is to be tried:
 * it has room, or it reports an error or a hang-up (a full pipe whose
 * reader is gone says only POLLERR), which write() turns into an errno. */
static bool writable(struct sl_log_writer *w, int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;

    atomic_fetch_add(&w->tries, 1);
    r = poll(&p, 1, POLL_MS);
    if (r < 0 && errno != EINTR) { /* out of memory: rest rather than spin */
        struct timespec t = {.tv_nsec = POLL_MS * 1000000L};

        nanosleep(&t, NULL);
    }
    return r > 0 && (p.revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL));
}

/* A write to the sink failed with err (0: it took nothing): say so once per
 * failing streak, and rest before the next batch. The writer thread. */
static void write_failed(struct sl_log_writer *w, int err)
{
    if (!w->failing)
        sl_log(SL_LOG_WARN, NULL,
               "%s: write failed: %s; its lines are dropped (counted in "
               "sluice_access_log_dropped_total) until a write works again",
               w->name != NULL ? w->name : "log", err != 0 ? strerror(err) : "nothing written");
    w->failing = true;
    w->retry_ns = sl__mono_ns() + w->retry_ms * NS_PER_MS;
    w->retry_ms = SL_MIN(w->retry_ms * 2, RETRY_MAX_MS);
}

/* How much of p[0..n) to hand one write() to a blocking descriptor: at most
 * PIPE_BUF, cut after a newline when there is one. */
static size_t chunk_for(const char *p, size_t n)
{
    const char *nl;

    if (n <= PIPE_BUF)
        return n;
    nl = memrchr(p, '\n', PIPE_BUF);
    return nl != NULL ? (size_t)(nl - p) + 1 : PIPE_BUF;
}

/* Write p[0..n) to fd as far as it will go; count the lines written and
 * dropped. Runs on the writer thread, without the lock. */
static void write_out(struct sl_log_writer *w, int fd, enum fd_kind kind, const char *p, size_t n)
{
    size_t off = 0;

    while (fd >= 0 && off < n && !gave_up(w)) {
        size_t len = kind == FD_BLOCKING ? chunk_for(p + off, n - off) : n - off;
        ssize_t r;

        if (kind == FD_BLOCKING && !writable(w, fd))
            continue;
        atomic_fetch_add(&w->tries, 1);
        r = write(fd, p + off, len);
        if (r > 0) {
            off += (size_t)r;
            w->progress_ns = sl__mono_ns();
            w->failing = false;
            w->retry_ms = RETRY_MIN_MS;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN) {
            writable(w, fd);
            continue;
        }
        write_failed(w, r < 0 ? errno : 0);
        break;
    }
    atomic_fetch_add(&w->written, count_lines(p, off));
    atomic_fetch_add(&w->dropped, count_lines(p + off, n - off));
}

/* Move n queued bytes from the ring's head into dst. Under lock. */
static void take(struct sl_log_writer *w, char *dst, size_t n)
{
    size_t first = SL_MIN(n, w->cap - w->head);

    memcpy(dst, w->ring + w->head, first);
    memcpy(dst + first, w->ring, n - first);
    w->head = (w->head + n) % w->cap;
    w->len -= n;
}

/* The oldest pending descriptor is due: switch to it. Under lock,
 * released meanwhile. */
static void switch_fd(struct sl_log_writer *w)
{
    struct pending *p = w->pending;
    int old = w->fd;
    char *old_name = w->name;

    w->fd = p->fd;
    w->kind = p->kind;
    w->name = p->name;
    w->pending = p->next;
    if (w->pending == NULL)
        w->pending_tail = &w->pending;
    w->failing = false;
    w->retry_ms = RETRY_MIN_MS;
    pthread_mutex_unlock(&w->lock);
    free(p);
    free(old_name);
    if (old >= 0)
        close(old);
    pthread_mutex_lock(&w->lock);
    pthread_cond_broadcast(&w->moved);
}

/* A CLOCK_MONOTONIC time (sl__mono_ns()) as a timespec. */
static struct timespec mono_ts(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ull),
                             .tv_nsec = (long)(ns % 1000000000ull)};
}

static void *run(void *arg)
{
    struct sl_log_writer *w = arg;

    sl__log_thread = "log";
    pthread_mutex_lock(&w->lock);
    for (;;) {
        size_t n;
        int fd;
        enum fd_kind kind;

        /* A switch is due once the lines before it are done; with no
         * descriptor now, at once: lines that had nowhere to go wait for
         * the next one. */
        if (w->pending != NULL && (w->done >= w->pending->at || w->fd < 0)) {
            switch_fd(w);
            continue;
        }
        /* Nothing to write, or nowhere yet: lines wait in the ring. */
        if (w->len == 0 || (w->fd < 0 && !w->stopping)) {
            if (w->stopping)
                break;
            w->idle = true;
            pthread_cond_wait(&w->wake, &w->lock);
            w->idle = false;
            continue;
        }
        /* The last write failed: rest before the next, lines waiting in the
         * ring (or dropped when it fills). Not at stop, nor with a switch
         * waiting behind the lines: those are tried (and dropped) at once. */
        if (w->failing && w->pending == NULL && !w->stopping && sl__mono_ns() < w->retry_ns) {
            struct timespec until = mono_ts(w->retry_ns);

            w->idle = w->resting = true;
            pthread_cond_timedwait(&w->wake, &w->lock, &until);
            w->idle = w->resting = false;
            continue;
        }
        n = SL_MIN(w->len, BATCH);
        if (w->pending != NULL)
            n = SL_MIN(n, w->pending->at - w->done);
        take(w, w->batch, n);
        fd = w->fd;
        kind = w->kind;
        pthread_mutex_unlock(&w->lock);
        write_out(w, fd, kind, w->batch, n);
        pthread_mutex_lock(&w->lock);
        w->done += n;
        pthread_cond_broadcast(&w->moved);
    }
    w->exited = true;
    pthread_cond_broadcast(&w->moved);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct sl_log_writer *sl__log_writer_start(size_t cap)
{
    struct sl_log_writer *w = xmalloc(sizeof(*w));
    pthread_condattr_t attr;
    sigset_t all, old;
    int rc;

    memset(w, 0, sizeof(*w));
    w->cap = cap > 0 ? cap : 1;
    w->ring = xmalloc(w->cap);
    w->batch = xmalloc(BATCH);
    w->fd = -1;
    w->pending_tail = &w->pending;
    w->give_up_ns = 1000 * NS_PER_MS;
    w->retry_ms = RETRY_MIN_MS;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_cond_init(&w->moved, &attr);
    pthread_condattr_destroy(&attr);
    /* The thread blocks every signal, so signals are handled elsewhere and
     * never interrupt its writes. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, run, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        fprintf(stderr, "sluice: cannot start the log writer thread: %s\n", strerror(rc));
        abort();
    }
    return w;
}

uint64_t sl__log_writer_append(struct sl_log_writer *w, const char *text, size_t len)
{
    size_t n = len, tail, first;
    uint64_t lost = 0;

    pthread_mutex_lock(&w->lock);
    if (n > w->cap - w->len) {
        const char *nl = memrchr(text, '\n', w->cap - w->len);

        n = nl != NULL ? (size_t)(nl - text) + 1 : 0;
    }
    tail = (w->head + w->len) % w->cap;
    first = SL_MIN(n, w->cap - tail);
    memcpy(w->ring + tail, text, first);
    memcpy(w->ring, text + first, n - first);
    w->len += n;
    w->appended += n;
    if (n > 0 && w->idle && !w->resting)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (n < len) {
        lost = count_lines(text + n, len - n);
        atomic_fetch_add(&w->dropped, lost);
    }
    return lost;
}

/* An absolute CLOCK_MONOTONIC time ms from now. */
static struct timespec after_ms(uint64_t ms)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static struct pending *new_pending(int fd, const char *name)
{
    struct pending *p = xmalloc(sizeof(*p));
    size_t n;

    name = name != NULL ? name : "log";
    n = strlen(name) + 1;
    p->fd = fd;
    p->kind = fd >= 0 ? fd_kind(fd) : FD_FILE;
    p->name = xmalloc(n);
    memcpy(p->name, name, n);
    p->next = NULL;
    return p;
}

static void free_pending(struct pending *p)
{
    if (p->fd >= 0)
        close(p->fd);
    free(p->name);
    free(p);
}

/* Queue p behind the lines appended so far (a reopen while a switch is
 * still pending puts its descriptor in the last pending one's place
 * instead), then wait as set_fd() and reopen() say. */
static int hand_over(struct sl_log_writer *w, struct pending *p, uint64_t wait_ms, bool reopen)
{
    struct timespec until = after_ms(wait_ms);
    uint64_t mark;
    int rc = 0;

    pthread_mutex_lock(&w->lock);
    mark = w->appended;
    if (reopen && w->pending != NULL) {
        struct pending *last = w->pending, old;

        while (last->next != NULL)
            last = last->next;
        old = *last;
        last->fd = p->fd;
        last->kind = p->kind;
        last->name = p->name;
        p->fd = old.fd; /* freed below: never written to */
        p->name = old.name;
    } else {
        /* Lines queued with nowhere to go are the new descriptor's. */
        p->at = w->fd < 0 && w->pending == NULL ? w->done : w->appended;
        *w->pending_tail = p;
        w->pending_tail = &p->next;
        p = NULL;
        if (w->idle)
            pthread_cond_signal(&w->wake);
    }
    if (reopen && w->done < w->stuck_at) {
        rc = -EINPROGRESS; /* a wait timed out on lines still not written */
    } else {
        while (wait_ms > 0 && w->done < mark && !w->exited && rc == 0)
            rc = pthread_cond_timedwait(&w->moved, &w->lock, &until);
        if (rc == ETIMEDOUT)
            w->stuck_at = mark;
        rc = rc == ETIMEDOUT ? -ETIMEDOUT : 0;
    }
    pthread_mutex_unlock(&w->lock);
    if (p != NULL)
        free_pending(p);
    return rc;
}

int sl__log_writer_set_fd(struct sl_log_writer *w, int fd, const char *name, uint64_t wait_ms)
{
    return hand_over(w, new_pending(fd, name), wait_ms, false);
}

int sl__log_writer_reopen(struct sl_log_writer *w, int fd, const char *name, uint64_t wait_ms)
{
    return hand_over(w, new_pending(fd, name), wait_ms, true);
}

/* Lines queued in the ring. Under lock. */
static uint64_t queued_lines(const struct sl_log_writer *w)
{
    size_t first = SL_MIN(w->len, w->cap - w->head);

    return count_lines(w->ring + w->head, first) + count_lines(w->ring, w->len - first);
}

void sl__log_writer_resize(struct sl_log_writer *w, size_t cap)
{
    char *ring, *old;
    size_t keep, len;
    uint64_t lost = 0;

    cap = cap > 0 ? cap : 1;
    ring = xmalloc(cap);
    pthread_mutex_lock(&w->lock);
    if (cap == w->cap) {
        pthread_mutex_unlock(&w->lock);
        free(ring);
        return;
    }
    /* The oldest whole lines that fit move to the new ring; the rest is
     * dropped, as if it had never been accepted. */
    len = w->len;
    keep = SL_MIN(len, cap);
    if (keep < len) {
        const char *nl;

        lost = queued_lines(w);
        take(w, ring, keep);
        nl = memrchr(ring, '\n', keep);
        keep = nl != NULL ? (size_t)(nl - ring) + 1 : 0;
        lost -= count_lines(ring, keep);
        w->appended -= len - keep;
        for (struct pending *p = w->pending; p != NULL; p = p->next)
            if (p->at > w->appended)
                p->at = w->appended;
    } else {
        take(w, ring, keep);
    }
    old = w->ring;
    w->ring = ring;
    w->cap = cap;
    w->head = 0;
    w->len = keep;
    pthread_mutex_unlock(&w->lock);
    free(old);
    atomic_fetch_add(&w->dropped, lost);
}

uint64_t sl__log_writer_dropped(const struct sl_log_writer *w)
{
    return atomic_load(&((struct sl_log_writer *)w)->dropped);
}

uint64_t sl__log_writer_written(const struct sl_log_writer *w)
{
    return atomic_load(&((struct sl_log_writer *)w)->written);
}

uint64_t sl__log_writer_tries(const struct sl_log_writer *w)
{
    return atomic_load(&((struct sl_log_writer *)w)->tries);
}

void sl__log_writer_stop(struct sl_log_writer *w, uint64_t give_up_ms)
{
    struct timespec until = after_ms((STOP_FACTOR + 1) * give_up_ms + 500);
    bool exited;

    pthread_mutex_lock(&w->lock);
    w->give_up_ns = give_up_ms * NS_PER_MS;
    atomic_store(&w->stop_ns, sl__mono_ns());
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    while (!w->exited)
        if (pthread_cond_timedwait(&w->moved, &w->lock, &until) == ETIMEDOUT)
            break;
    exited = w->exited;
    pthread_mutex_unlock(&w->lock);
    if (!exited) {
        /* Stuck in a write() that poll promised would not block (a line
         * longer than the pipe has room for): leave it to the exit. */
        pthread_detach(w->thread);
        return;
    }
    pthread_join(w->thread, NULL);
    w->joined = true;
    if (w->fd >= 0)
        close(w->fd);
    while (w->pending != NULL) {
        struct pending *p = w->pending;

        w->pending = p->next;
        free_pending(p);
    }
    w->pending_tail = &w->pending;
    w->fd = -1;
}

void sl__log_writer_free(struct sl_log_writer *w)
{
    if (w == NULL || !w->joined)
        return;
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->moved);
    free(w->ring);
    free(w->batch);
    free(w->name);
    free(w);
}
