/*
 * The resolver cache and its background refresh.
 */
#include "upstream/resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

struct entry {
    char host[256];
    struct sockaddr_storage addrs[SL_RESOLVE_MAX]; /* port 0 */
    size_t n;
    bool refresh; /* an upstream target: re-resolved in the background */
    bool pending; /* a background lookup is under way */
    struct entry *next;
};

static struct entry *cache;

int sl__split_hostport(const char *s, char *host, size_t size, uint16_t *port, const char **why)
{
    const char *p, *colon;
    size_t hlen;
    char *end;
    long v;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb[1] != ':') {
            *why = "expected [IPv6]:port";
            return -1;
        }
        hlen = (size_t)(rb - s - 1);
        if (hlen >= size) {
            *why = "host is too long";
            return -1;
        }
        memcpy(host, s + 1, hlen);
        p = rb + 2;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "expected host:port";
            return -1;
        }
        hlen = (size_t)(colon - s);
        if (hlen >= size) {
            *why = "host is too long";
            return -1;
        }
        memcpy(host, s, hlen);
        p = colon + 1;
        if (memchr(s, ':', hlen) != NULL) {
            *why = "write IPv6 addresses in brackets, as [::1]:8080";
            return -1;
        }
    }
    host[hlen] = '\0';
    v = strtol(p, &end, 10);
    if (*p == '\0' || *end != '\0' || v < 0 || v > 65535) {
        *why = "port must be a number from 0 to 65535";
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static bool numeric(const char *host, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

/* Sorted, de-duplicated addresses from getaddrinfo's list. */
static size_t collect(const struct addrinfo *ai, struct sockaddr_storage *out, size_t max)
{
    size_t n = 0;

    for (; ai != NULL && n < max; ai = ai->ai_next) {
        struct sockaddr_storage ss;
        bool dup = false;

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        set_port(&ss, 0);
        for (size_t i = 0; i < n; i++)
            if (memcmp(&out[i], &ss, sizeof(ss)) == 0)
                dup = true;
        if (!dup)
            out[n++] = ss;
    }
    /* A stable order, so an unchanged answer in another order is no change. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && memcmp(&out[j - 1], &out[j], sizeof(out[j])) > 0; j--) {
            struct sockaddr_storage t = out[j];

            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static struct entry *find(const char *host)
{
    for (struct entry *e = cache; e != NULL; e = e->next)
        if (strcmp(e->host, host) == 0)
            return e;
    return NULL;
}

int sl__resolve(const char *host, uint16_t port, bool passive, bool for_refresh,
                struct sockaddr_storage *out, size_t max, size_t *n, bool *is_name,
                const char **why)
{
    struct addrinfo hints = {0}, *res = NULL;
    struct entry *e;
    int rc;

    *is_name = false;
    if (passive && (host[0] == '\0' || strcmp(host, "*") == 0)) {
        struct sockaddr_in *in = (struct sockaddr_in *)&out[0];

        memset(&out[0], 0, sizeof(out[0]));
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        in->sin_port = htons(port);
        *n = 1;
        return 0;
    }
    if (numeric(host, &out[0])) {
        set_port(&out[0], port);
        *n = 1;
        return 0;
    }
    *is_name = true;
    e = find(host);
    if (e == NULL) {
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0 || res == NULL) {
            *why = rc == EAI_NONAME || rc == EAI_NODATA ? "host name not found" : gai_strerror(rc);
            return -1;
        }
        e = sl__xcalloc(1, sizeof(*e));
        snprintf(e->host, sizeof(e->host), "%s", host);
        e->n = collect(res, e->addrs, SL_RESOLVE_MAX);
        freeaddrinfo(res);
        e->next = cache;
        cache = e;
    }
    if (for_refresh)
        e->refresh = true;
    if (e->n == 0) {
        *why = "host name has no IPv4 or IPv6 address";
        return -1;
    }
    *n = SL_MIN(e->n, max);
    for (size_t i = 0; i < *n; i++) {
        out[i] = e->addrs[i];
        set_port(&out[i], port);
    }
    return 0;
}

/* -- background refresh ------------------------------------------------------- */

static uv_timer_t refresh_timer;
static uv_loop_t *refresh_loop;
static void (*on_changed)(void);

struct lookup {
    uv_getaddrinfo_t req;
    struct entry *e;
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct lookup *l = SL_CONTAINER_OF(req, struct lookup, req);
    struct entry *e = l->e;
    struct sockaddr_storage addrs[SL_RESOLVE_MAX];
    size_t n;

    e->pending = false;
    free(l);
    if (refresh_loop == NULL) {
        /* Stopped meanwhile (the process is exiting): nothing to rebuild. */
        if (status == 0)
            uv_freeaddrinfo(res);
        return;
    }
    if (status < 0) {
        /* Keep the last good answer: a DNS hiccup must not empty an upstream. */
        if (status != UV_ECANCELED)
            sl_log(SL_LOG_WARN, NULL, "resolving %s failed: %s; keeping its %zu address%s", e->host,
                   uv_strerror(status), e->n, e->n == 1 ? "" : "es");
        return;
    }
    n = collect(res, addrs, SL_RESOLVE_MAX);
    uv_freeaddrinfo(res);
    if (n == 0 || (n == e->n && memcmp(addrs, e->addrs, n * sizeof(addrs[0])) == 0))
        return;
    sl_log(SL_LOG_INFO, NULL, "%s now resolves to %zu address%s (was %zu)", e->host, n,
           n == 1 ? "" : "es", e->n);
    memcpy(e->addrs, addrs, n * sizeof(addrs[0]));
    e->n = n;
    if (on_changed != NULL)
        on_changed();
}

static void on_refresh(uv_timer_t *t)
{
    struct addrinfo hints = {0};

    (void)t;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    for (struct entry *e = cache; e != NULL; e = e->next) {
        struct lookup *l;

        if (!e->refresh || e->pending)
            continue;
        l = sl__xcalloc(1, sizeof(*l));
        l->e = e;
        if (uv_getaddrinfo(refresh_loop, &l->req, on_resolved, e->host, NULL, &hints) != 0) {
            free(l);
            continue;
        }
        e->pending = true;
    }
}

void sl__resolver_start(uv_loop_t *loop, uint64_t interval_ms, void (*changed)(void))
{
    if (refresh_loop == NULL) {
        refresh_loop = loop;
        uv_timer_init(loop, &refresh_timer);
    }
    on_changed = changed;
    uv_timer_stop(&refresh_timer);
    if (interval_ms > 0)
        uv_timer_start(&refresh_timer, on_refresh, interval_ms, interval_ms);
}

void sl__resolver_stop(void)
{
    if (refresh_loop != NULL) {
        uv_timer_stop(&refresh_timer);
        uv_close((uv_handle_t *)&refresh_timer, NULL);
        refresh_loop = NULL;
    }
}
