/*
 * Telling the service manager what the gateway is doing: systemd's
 * sd_notify datagram protocol on the socket NOTIFY_SOCKET names, written
 * directly (no libsystemd). Without NOTIFY_SOCKET every call does nothing.
 * Main thread only. A message that cannot be sent is dropped: nothing here
 * blocks or fails the gateway.
 */
#ifndef SL_SERVER_NOTIFY_H
#define SL_SERVER_NOTIFY_H

/*
 * Read NOTIFY_SOCKET (a path, or @name for an abstract socket) and open a
 * non-blocking datagram socket to it. Called once at start, before
 * privileges are dropped: the socket is connected then, so later messages
 * still reach a socket only root may write to. An address it cannot use is
 * logged once as a warning and ignored.
 */
void sl__notify_open(void);

/* READY=1, MAINPID= and STATUS=status: the gateway accepts connections
 * (at start, and again when a reload is done, whatever its outcome). */
void sl__notify_ready(const char *status);

/* RELOADING=1, MONOTONIC_USEC= (CLOCK_MONOTONIC now, in microseconds) and
 * STATUS=status: a reload starts. */
void sl__notify_reloading(const char *status);

/* STOPPING=1 and STATUS=status: a graceful stop starts. */
void sl__notify_stopping(const char *status);

/* Close the socket (at exit). */
void sl__notify_close(void);

#endif
