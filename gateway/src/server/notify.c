/*
 * The sd_notify protocol, written directly: each message is one datagram of
 * newline-separated KEY=VALUE lines sent to the AF_UNIX socket that
 * NOTIFY_SOCKET names ("/path", or "@name" for the abstract namespace).
 * systemd reads READY=1 (Type=notify: the start is done), RELOADING=1 with
 * MONOTONIC_USEC= (a reload started; READY=1 ends it), STOPPING=1 and
 * STATUS= (what `systemctl status` shows).
 *
 * The socket is connected once at start, as root, so the messages keep
 * reaching a socket only root can write to after user: drops privileges.
 * Should the connection fail later (the receiver was re-created), a message
 * is sent to the address instead. Sending never blocks (MSG_DONTWAIT, a
 * non-blocking socket); a message that cannot go is dropped, and the first
 * such failure is logged once.
 */
#include "server/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

static int fd = -1;
static bool connected, warned;
static struct sockaddr_un addr;
static socklen_t addr_len;

/* The value of NOTIFY_SOCKET as the address to send to: 0, or -1 when it is
 * not an AF_UNIX path or @name (or too long for one). */
static int parse(const char *v)
{
    size_t n = strlen(v);

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if ((v[0] != '/' && v[0] != '@') || n < 2 || n >= sizeof(addr.sun_path))
        return -1;
    memcpy(addr.sun_path, v, n);
    if (v[0] == '@')
        addr.sun_path[0] = '\0'; /* abstract: no terminating NUL counts */
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (v[0] == '/'));
    return 0;
}

void sl__notify_open(void)
{
    const char *v = getenv("NOTIFY_SOCKET");

    if (v == NULL || v[0] == '\0' || fd >= 0)
        return;
    if (parse(v) != 0) {
        sl_log(SL_LOG_WARN, NULL,
               "NOTIFY_SOCKET=%s is not a unix socket path or @name; the service manager is "
               "not told when sluice is ready",
               v);
        return;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        sl_log(SL_LOG_WARN, NULL, "cannot open a socket for NOTIFY_SOCKET=%s: %s", v,
               strerror(errno));
        return;
    }
    /* May fail (nothing bound there yet): each message then goes to the
     * address, which is checked again at every send. */
    connected = connect(fd, (struct sockaddr *)&addr, addr_len) == 0;
}

/* Send msg; on failure log once and drop it. */
static void send_msg(const char *msg)
{
    size_t n = strlen(msg);
    ssize_t r = -1;

    if (fd < 0)
        return;
    if (connected)
        r = send(fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0)
        r = sendto(fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
    if (r < 0 && !warned) {
        warned = true;
        sl_log(SL_LOG_WARN, NULL,
               "cannot notify the service manager (NOTIFY_SOCKET=%s): %s; going on without "
               "(this is said once)",
               getenv("NOTIFY_SOCKET") ? getenv("NOTIFY_SOCKET") : "", strerror(errno));
    }
}

/* Format state lines, then "STATUS=" and status on one line (a newline or
 * control character in it would start another field: each becomes a
 * space), and send them. */
static void notify(const char *status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int n;

    if (fd < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(msg) - 8)
        return;
    memcpy(msg + n, "STATUS=", 8);
    n += 7;
    for (const char *s = status; *s != '\0' && (size_t)n < sizeof(msg) - 1; s++)
        msg[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
    msg[n] = '\0';
    send_msg(msg);
}

void sl__notify_ready(const char *status)
{
    notify(status, "READY=1\nMAINPID=%ld\n", (long)getpid());
}

void sl__notify_reloading(const char *status)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    notify(status, "RELOADING=1\nMONOTONIC_USEC=%llu\n",
           (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

void sl__notify_stopping(const char *status)
{
    notify(status, "STOPPING=1\n");
}

void sl__notify_close(void)
{
    if (fd >= 0)
        close(fd);
    fd = -1;
    connected = false;
}
