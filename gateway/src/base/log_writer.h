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
 * has gone to the previous descriptor (lines that had none go to fd). If
 * wait_ms > 0, wait up to that long for those lines to be written. Any
 * thread. Returns 0, or -ETIMEDOUT when the old descriptor did not take
 * them in time (the switch still happens, later, in order).
 */
int sl__log_writer_set_fd(struct sl_log_writer *w, int fd, uint64_t wait_ms);

/*
 * Make the ring cap bytes. Lines queued beyond a smaller cap are dropped
 * and counted. Any thread.
 */
void sl__log_writer_resize(struct sl_log_writer *w, size_t cap);

/* Lines dropped so far (a full ring, a failed write, a stop that gave up). */
uint64_t sl__log_writer_dropped(const struct sl_log_writer *w);

/* Lines written to a descriptor so far. */
uint64_t sl__log_writer_written(const struct sl_log_writer *w);

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
