/*
 * A background writer for log lines: a bounded ring buffer that any thread
 * appends whole lines to, and one thread of its own that writes the ring to
 * a file descriptor. A slow disk, a full pipe or a FIFO nobody reads stalls
 * only that thread: when the ring is full, the lines that do not fit are
 * dropped and counted, and the appending thread never waits for I/O (it
 * takes one short lock to copy its lines in).
 *
 * Lines reach the descriptor in the order they were appended. A new
 * descriptor handed over with sl__log_writer_set_fd() takes effect exactly
 * after the lines appended before the call, so a reopen after rotation
 * sends every earlier line to the old file and every later one to the new.
 *
 * A write that fails (EPIPE from a pipe whose reader is gone, ENOSPC...)
 * drops the rest of its batch, counted, and logs one warning naming the
 * sink and the error until a write works again; the writer then rests
 * (50 ms, doubling up to 2 s) before each next try, lines waiting in the
 * ring meanwhile, so a sink that stays broken never makes it spin.
 */
#ifndef SL_LOG_WRITER_H
#define SL_LOG_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct sl_log_writer;

/*
 * Start a writer with a ring of cap bytes (at least 4 KiB is sensible) and
 * no descriptor yet (lines appended before one is set wait in the ring).
 * Starts its thread; aborts with a message if that or the allocation fails.
 * The caller owns the writer and ends it with sl__log_writer_stop().
 */
struct sl_log_writer *sl__log_writer_start(size_t cap);

/*
 * Copy len bytes of whole lines (text ends with '\n') into the ring and wake
 * the writer. Whatever does not fit is dropped a whole line at a time and
 * counted. Any thread; never blocks on I/O. Returns the lines dropped.
 */
uint64_t sl__log_writer_append(struct sl_log_writer *w, const char *text, size_t len);

/*
 * Write to fd (owned by the writer from now on, closed when replaced or at
 * stop; -1: none, lines wait in the ring) once every line appended so far
 * has gone to the previous descriptor. Lines that had none go to the next
 * descriptor set: those appended before the first one, and those appended
 * after a set_fd(-1) whose switch had not happened yet when a descriptor
 * came after it. name says what the sink is in the warning a failed write
 * logs ("access log /var/log/a.log"; copied; NULL: "log"). If wait_ms > 0,
 * wait up to that long for the earlier lines to be written. Any thread.
 * Returns 0, or -ETIMEDOUT when the old descriptor did not take them in
 * time (the switch still happens, later, in order).
 */
int sl__log_writer_set_fd(struct sl_log_writer *w, int fd, const char *name, uint64_t wait_ms);

/*
 * The same sink as the last set_fd() or reopen() named, opened again (after
 * rotation): as set_fd(), with two differences that keep a stuck sink (a
 * FIFO nobody reads) from piling up descriptors and holding up the caller
 * on every reopen. While the last switch asked for has not happened yet,
 * fd takes that pending descriptor's place (which is closed, never written
 * to) rather than queuing behind it. And while an earlier wait of set_fd()
 * or reopen() timed out on lines that are still not written, it does not
 * wait again but returns -EINPROGRESS at once (the switch happens later, in
 * order). Otherwise 0 or -ETIMEDOUT as set_fd().
 */
int sl__log_writer_reopen(struct sl_log_writer *w, int fd, const char *name, uint64_t wait_ms);

/*
 * Make the ring cap bytes. Lines queued beyond a smaller cap are dropped
 * and counted. Any thread.
 */
void sl__log_writer_resize(struct sl_log_writer *w, size_t cap);

/* Lines dropped so far (a full ring, a failed write, a stop that gave up). */
uint64_t sl__log_writer_dropped(const struct sl_log_writer *w);

/* Lines written to a descriptor so far. */
uint64_t sl__log_writer_written(const struct sl_log_writer *w);

/* write(2) and poll(2) calls made on descriptors so far: how the tests see
 * that a broken or stuck sink is not spun on. */
uint64_t sl__log_writer_tries(const struct sl_log_writer *w);

/*
 * Write what is queued, then end the thread and close the descriptor. A
 * descriptor that takes nothing for give_up_ms (a FIFO nobody reads) ends
 * the wait early: the rest is dropped and counted, so a stuck sink never
 * hangs shutdown. The whole stop is bounded by a few times give_up_ms. Call
 * once, after every appender is done; the counters stay readable.
 */
void sl__log_writer_stop(struct sl_log_writer *w, uint64_t give_up_ms);

/* Free a stopped writer (left to the exit if its thread could not end). */
void sl__log_writer_free(struct sl_log_writer *w);

#endif
