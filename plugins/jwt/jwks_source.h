/*
 * jwt plugin: key sets fetched from a JWKS URL (or found through OIDC
 * discovery), shared by every config and worker that names the same
 * document.
 *
 * A source is process-wide, keyed by its URL (and CA file), refcounted by
 * the configs that use it, so a reload that keeps the same jwks_uri keeps
 * the keys it already has. Its key set is immutable and refcounted
 * (jwks.h); the source swaps in a new one under its mutex. Fetches run on
 * worker loops: each worker's tick looks for a source that is due and
 * claims it with the source's in-flight flag, so one fetch runs at a time
 * per source whichever worker starts it. A failed fetch keeps the last good
 * set and retries with a backoff.
 *
 * Requests that need keys the source does not have yet (none ever loaded,
 * or a kid it does not know) wait on their worker (struct jwks_wait) until
 * the next fetch completes, whichever worker ran it.
 */
#ifndef SL_PLUGIN_JWT_JWKS_SOURCE_H
#define SL_PLUGIN_JWT_JWKS_SOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "jwks.h"

/* A kid the set does not know refetches at most this often per source. */
#define JWKS_KID_REFETCH_MS 10000

/* The most a request waits for a fetch (two for discovery) to finish. */
#define JWKS_WAIT_MS 12000

/* What each fetch may take (the fetch's own timeout). */
#define JWKS_FETCH_TIMEOUT_MS 5000

struct jwks_source;
struct jwks_worker;

/*
 * The source for url (the JWKS, or with discovery the issuer's discovery
 * document, naming issuer), trusting the CAs in ca_file (NULL: the
 * system's), with a reference for the caller's config. refresh_ms is the
 * config's jwks_refresh (explicit when refresh_set, else the default that a
 * max-age may replace); a source shared by several configs refreshes at the
 * shortest. Fetches nothing: that starts on a worker. Any thread.
 */
struct jwks_source *sl__jwks_source_get(const char *url, bool discovery, const char *issuer,
                                        const char *ca_file, uint64_t refresh_ms, bool refresh_set);

/* Drop a config's reference; the last one frees the source. Any thread. */
void sl__jwks_source_put(struct jwks_source *s);

/* The source's current key set with a reference for the caller (drop it
 * with sl__jwks_set_unref()), or NULL when none was ever loaded. */
struct jwks_set *sl__jwks_source_set(struct jwks_source *s);

/* Whether a request should wait for the source's next fetch. */
enum jwks_ask {
    JWKS_WAIT, /* a fetch is running (started now on w's loop, maybe): wait for it */
    JWKS_NO,   /* no fetch for this: a kid refetch ran less than 10 s ago */
    JWKS_DOWN, /* no key set was ever loaded and the last fetch failed */
};

/*
 * Ask for keys the source lacks: kid_unknown when the set is loaded but
 * lacks the token's kid (rate-limited to one fetch per JWKS_KID_REFETCH_MS),
 * else because no set was ever loaded. Starts a fetch on w's loop when one
 * is needed and none runs. *seq is the count of completed fetches before
 * any started: what sl__jwks_wait() waits to see change. Runs on w's loop.
 */
enum jwks_ask sl__jwks_source_ask(struct jwks_source *s, struct jwks_worker *w, bool kid_unknown,
                                  uint64_t *seq);

/*
 * A request waiting for a source's next fetch. sl__jwks_wait() adds it to
 * w (the request's worker); done runs on w's loop once a fetch of src
 * completes (ok or not) or the wait times out, after the wait was taken
 * off the list. sl__jwks_unwait() takes it off before that (the client
 * left): done never runs then. The caller owns the memory.
 */
struct jwks_wait {
    struct jwks_wait *prev, *next;
    struct jwks_source *src;
    uint64_t seq;      /* fetches of src completed when the wait began */
    uint64_t deadline; /* uv_hrtime() milliseconds */
    void (*done)(struct jwks_wait *wt, bool timed_out);
    bool waiting;
};

/* Wait until src's count of completed fetches is no longer seq (from
 * sl__jwks_source_ask(), so a fetch that ended meanwhile, even inside that
 * call, is not missed), or JWKS_WAIT_MS. */
void sl__jwks_wait(struct jwks_worker *w, struct jwks_wait *wt, uint64_t seq);
void sl__jwks_unwait(struct jwks_worker *w, struct jwks_wait *wt);

/* A worker's part: its tick (due refreshes, wait deadlines) and its wake-up
 * for waiters. The first tick runs at once, so the first fetch starts as
 * soon as the worker does. Made and freed on the worker's loop. */
struct jwks_worker *sl__jwks_worker_new(uv_loop_t *loop);
void sl__jwks_worker_free(struct jwks_worker *w);

/* sluice_jwks_refreshes_total{issuer,result}, for the plugin's metrics
 * callback (main thread). */
void sl__jwks_metrics(void (*emit)(void *ctx, const char *text), void *ctx);

#endif
