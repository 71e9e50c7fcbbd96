/*
 * Host names to addresses, for listeners and upstream targets.
 *
 * Numeric addresses are parsed; names are resolved with getaddrinfo() the
 * first time a config uses them (on the main thread, which never serves
 * requests) and kept in a cache. Upstream target names are resolved again in
 * the background every resolve_interval; when the addresses behind a name
 * change, the gateway rebuilds the current generation with the new targets.
 */
#ifndef SL_RESOLVE_H
#define SL_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define SL_RESOLVE_MAX 64 /* addresses kept per name */

/*
 * Split "host:port", "[v6]:port" or "*:port" into host (NUL-terminated in
 * host[size]) and port. Returns 0, or -1 with *why set.
 */
int sl__split_hostport(const char *s, char *host, size_t size, uint16_t *port, const char **why);

/*
 * The addresses of host:port, into out[0..max), count in *n. passive: for a
 * listener ("*" or "" is every address). A name is looked up in the cache,
 * else resolved now and cached (for_refresh marks it for background
 * re-resolution). *is_name tells whether host was a name. Main thread.
 * Returns 0, or -1 with *why set.
 */
int sl__resolve(const char *host, uint16_t port, bool passive, bool for_refresh,
                struct sockaddr_storage *out, size_t max, size_t *n, bool *is_name,
                const char **why);

/*
 * Re-resolve every cached upstream name in the background on loop, every
 * interval_ms, and call changed() (on loop) when a name's addresses differ
 * from the cache. Calling it again changes the interval.
 */
void sl__resolver_start(uv_loop_t *loop, uint64_t interval_ms, void (*changed)(void));
void sl__resolver_stop(void);

#endif
