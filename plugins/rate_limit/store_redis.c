/*
 * rate_limit's Redis store: exact limits across any number of gateway
 * instances.
 *
 * Each worker has one connection (hiredis async on its loop). Decisions asked
 * for during one loop turn are sent together, as one EVALSHA of a Lua script
 * over all their keys, when the turn ends (a uv_check handle): under load
 * many decisions cost one round trip and one script call. The script keeps
 * one number per bucket (the GCRA TAT) and uses Redis TIME, so the clocks of
 * the gateway instances never matter.
 *
 * No decision waits longer than redis.timeout: a batch without an answer by
 * then fails (on_store_failure applies) and the connection is dropped, which
 * makes a paused Redis look like a dead one. Reconnects back off from 100 ms
 * to 5 s, and while Redis is down decisions fail at once.
 */
#include "rate_limit.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_uv.h"
#include "sluice/alloc.h"
#include "sluice/log.h"

#define BATCH_MAX      64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

atomic_ullong sl__rl_redis_errors;

/*
 * KEYS: the batch's distinct buckets. ARGV: the number of groups, then per
 * group its number of limits, how many requests it stands for (consecutive
 * requests asking the same of the same buckets travel as one group), and
 * per limit: key index, interval (us), burst, max delay (us), cost (1 take,
 * -1 refund), and for a refund the TAT its reservation stored. A refund
 * applies when nobody reserved since; otherwise it waits in "KEY:left" (a
 * sorted set, at most 64) until the reservations above it are refunded
 * too, as sl__gcra_refund_chain() does for the local store.
 *
 * A group is settled in closed form, not request by request: with base =
 * max(TAT, now), the k-th request of the group (from 0) would have to wait
 * base + (k+1)T - bT - now, so it gets a token (now or within max delay md)
 * while k < floor((now + md - base) / T) + b. Every request takes a token
 * from all its buckets or from none, and once one is refused the rest of
 * the group are too (nothing changed), so the group admits the smallest of
 * those counts over its limits, and each bucket's TAT moves on by that many
 * intervals. Returns Redis's clock, then per group the number admitted and
 * the TAT of each of its buckets before the group: the gateway replays the
 * group with the same arithmetic (gcra.c) for each request's details. The
 * script's work and its answer grow with the groups, not the requests.
 */
static const char script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local tats, dirty, out, a = {}, {}, {now}, 2\n"
    "for g = 1, tonumber(ARGV[1]) do\n"
    "  local n, adm = tonumber(ARGV[a]), tonumber(ARGV[a+1])\n"
    "  local ks, ts, bases, slot = {}, {}, {}, #out + 1\n"
    "  a = a + 2\n"
    "  out[slot] = 0\n"
    "  for i = 1, n do\n"
    "    local k, T, b = tonumber(ARGV[a]), tonumber(ARGV[a+1]), tonumber(ARGV[a+2])\n"
    "    local md, cost, expect = tonumber(ARGV[a+3]), tonumber(ARGV[a+4]), tonumber(ARGV[a+5])\n"
    "    a = a + 6\n"
    "    local tat = tats[k]\n"
    "    if tat == nil then tat = tonumber(redis.call('GET', KEYS[k]) or '0'); tats[k] = tat end\n"
    "    out[#out + 1] = tat\n"
    "    if cost < 0 then\n"
    "      local lk = KEYS[k] .. ':left'\n"
    "      adm = 0\n"
    "      if tat == expect then\n"
    "        local nt = tat - T\n"
    "        while redis.call('ZREM', lk, string.format('%d', nt)) == 1 do nt = nt - T end\n"
    "        if nt < now then nt = now end\n"
    "        redis.call('ZREMRANGEBYSCORE', lk, '-inf', now)\n"
    "        redis.call('ZREMRANGEBYSCORE', lk, nt, '+inf')\n"
    "        tats[k] = nt; dirty[k] = true\n"
    "      elseif expect > now and expect < tat then\n"
    "        redis.call('ZREMRANGEBYSCORE', lk, '-inf', now)\n"
    "        if redis.call('ZCARD', lk) < 64 then\n"
    "          redis.call('ZADD', lk, expect, string.format('%d', expect))\n"
    "          redis.call('PEXPIRE', lk, math.ceil((tat - now) / 1000))\n"
    "        end\n"
    "      end\n"
    "    else\n"
    "      local base = tat\n"
    "      if base < now then base = now end\n"
    "      local can = math.floor((now + md - base) / T) + b\n"
    "      if can < adm then adm = can end\n"
    "      ks[#ks + 1] = k; ts[#ts + 1] = T; bases[#bases + 1] = base\n"
    "    end\n"
    "  end\n"
    "  if adm > 0 then\n"
    "    out[slot] = adm\n"
    "    for i = 1, #ks do tats[ks[i]] = bases[i] + adm * ts[i]; dirty[ks[i]] = true end\n"
    "  end\n"
    "end\n"
    "for k, _ in pairs(dirty) do\n"
    "  local ttl = math.ceil((tats[k] - now) / 1000)\n"
    "  if ttl > 0 then redis.call('SET', KEYS[k], tats[k], 'PX', ttl)\n"
    "  else redis.call('DEL', KEYS[k]) end\n"
    "end\n"
    "return out\n";

struct item {
    struct item *next;
    rl_done_fn *done; /* NULL: a refund, or its request went away */
    void *arg;
    size_t n;
    int cost;
    struct sl_gcra_limit limits[RL_MAX_LIMITS];
    int64_t tats[RL_MAX_LIMITS]; /* a refund: what its reservation stored */
    char *keys[RL_MAX_LIMITS];
    uint64_t at; /* loop time it was asked for: its answer is due by at + timeout */
    bool lead;   /* the first of its group in the batch */
};

struct batch {
    struct batch *next, *prev; /* in flight */
    struct rl_redis *rr;
    struct item *items;
    size_t n_items;
    uv_timer_t timer;
    bool done;    /* answered or failed: later news is ignored */
    bool evalled; /* sent again with EVAL after NOSCRIPT */
    bool replied; /* hiredis has called back (it always does, once) */
    /* The command, kept for a resend after NOSCRIPT. */
    int argc;
    const char **argv;
    size_t *argvlen;
    char *nums;
};

enum state { RS_DOWN, RS_CONNECTING, RS_UP };

struct rl_redis {
    uv_loop_t *loop;
    redisAsyncContext *ac;
    enum state state;
    char addr[300]; /* the settings ac was made with */
    char password[256];
    uint32_t db;
    uint64_t retry_at; /* loop time before which nobody reconnects */
    uint32_t backoff_ms;
    bool outage;   /* logged as down */
    char why[128]; /* the last failure */
    uint64_t timeout_ms;
    uv_check_t check;
    bool check_on;
    struct item *queue, **tail;
    size_t queued;
    struct batch *flying;
};

static char sha[41];
static uv_once_t sha_once = UV_ONCE_INIT;

static void make_sha(void)
{
    unsigned char d[SHA_DIGEST_LENGTH];

    SHA1((const unsigned char *)script, sizeof(script) - 1, d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(sha + 2 * i, 3, "%02x", d[i]);
}

static void free_item(struct item *it)
{
    for (size_t i = 0; i < it->n; i++)
        free(it->keys[i]);
    free(it);
}

/* -- outages ------------------------------------------------------------------ */

/* Whether an outage has been logged: one line per outage for the whole
 * instance, whichever worker notices first. */
static atomic_bool outage_logged;

static void went_down(struct rl_redis *rr, const char *why)
{
    snprintf(rr->why, sizeof(rr->why), "%s", why);
    rr->state = RS_DOWN;
    rr->retry_at = uv_now(rr->loop) + rr->backoff_ms;
    rr->backoff_ms = rr->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rr->backoff_ms * 2;
    if (!rr->outage) {
        rr->outage = true;
        if (atomic_exchange(&outage_logged, true))
            return;
        sl_log(SL_LOG_WARN, NULL,
               "redis at %s is unreachable (%s): rate limits fall back to on_store_failure "
               "until it is back",
               rr->addr, why);
    }
}

static void came_back(struct rl_redis *rr)
{
    rr->backoff_ms = BACKOFF_MIN_MS;
    if (rr->outage) {
        rr->outage = false;
        if (atomic_exchange(&outage_logged, false))
            sl_log(SL_LOG_WARN, NULL, "redis at %s is back: shared rate limiting resumed",
                   rr->addr);
    }
}

/* Fail every decision still waiting to be sent. */
static void fail_queue(struct rl_redis *rr)
{
    while (rr->queue != NULL) {
        struct item *it = rr->queue;

        rr->queue = it->next;
        rr->queued--;
        if (it->done != NULL) {
            struct sl_gcra_result r = {0};
            int64_t tats[RL_MAX_LIMITS] = {0};

            atomic_fetch_add_explicit(&sl__rl_redis_errors, 1, memory_order_relaxed);
            it->done(it->arg, false, &r, tats);
        }
        free_item(it);
    }
    rr->tail = &rr->queue;
}

/* Drop the connection; hiredis calls every pending callback with no reply,
 * and what waits to be sent fails too. */
static void drop(struct rl_redis *rr, const char *why)
{
    redisAsyncContext *ac = rr->ac;

    went_down(rr, why);
    if (ac != NULL) {
        rr->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    fail_queue(rr);
}

/* -- batches -------------------------------------------------------------------- */

static void kick(struct rl_redis *rr);

/* Queue a decision (cost 1) or a refund (cost -1) for the next batch. */
static void enqueue(struct rl_redis *rr, const struct sl_gcra_limit *limits,
                    const char *const *keys, const int64_t *tats, size_t n, int cost,
                    rl_done_fn *done, void *arg)
{
    struct item *it = sl_calloc(1, sizeof(*it), "the rate_limit plugin");
    it->done = done;
    it->arg = arg;
    it->cost = cost;
    it->n = n > RL_MAX_LIMITS ? RL_MAX_LIMITS : n;
    for (size_t i = 0; i < it->n; i++) {
        it->limits[i] = limits[i];
        it->tats[i] = tats != NULL ? tats[i] : 0;
        it->keys[i] = sl_strdup(keys[i], "the rate_limit plugin");
    }
    it->at = uv_now(rr->loop);
    *rr->tail = it;
    rr->tail = &it->next;
    rr->queued++;
    kick(rr);
}

/*
 * Answer a batch's requests. From a reply, each group is replayed request by
 * request from its buckets' TATs before it, with the arithmetic the local
 * store uses; Redis's count of admitted requests has the last word (it is
 * what Redis stored), so whatever the replay says, no request beyond the
 * count gets a token.
 */
static void deliver(struct batch *b, bool ok, const redisReply *reply)
{
    int64_t now = ok ? reply->element[0]->integer : 0, cur[RL_MAX_LIMITS] = {0};
    long long admitted = 0, k = 0;
    size_t at = 1;

    for (struct item *it = b->items; it != NULL; it = it->next) {
        struct sl_gcra_result r = {0};
        int64_t tats[RL_MAX_LIMITS] = {0};

        if (ok) {
            if (it->lead) {
                admitted = reply->element[at++]->integer;
                for (size_t i = 0; i < it->n; i++)
                    cur[i] = reply->element[at++]->integer;
                k = 0;
            }
            sl__gcra_check_all(it->limits, cur, it->n, now, tats, &r);
            if (k++ >= admitted && r.decision != SL_GCRA_REJECT) {
                r.decision = SL_GCRA_REJECT;
                r.remaining = 0;
                memcpy(tats, cur, sizeof(tats));
            }
            memcpy(cur, tats, sizeof(cur));
            /* Its client left while Redis decided, and Redis gave it a
             * token: give it back, as a held client that leaves does. */
            if (it->done == NULL && it->cost > 0 && r.decision != SL_GCRA_REJECT && b->rr != NULL)
                enqueue(b->rr, it->limits, (const char *const *)it->keys, tats, it->n, -1, NULL,
                        NULL);
        } else if (it->done != NULL) {
            atomic_fetch_add_explicit(&sl__rl_redis_errors, 1, memory_order_relaxed);
        }
        if (it->done != NULL)
            it->done(it->arg, ok, &r, tats);
    }
}

static void batch_freed(uv_handle_t *h)
{
    struct batch *b = h->data;

    while (b->items != NULL) {
        struct item *it = b->items;

        b->items = it->next;
        free_item(it);
    }
    free(b->argv);
    free(b->argvlen);
    free(b->nums);
    free(b);
}

static void batch_finish(struct batch *b)
{
    struct rl_redis *rr = b->rr;

    if (b->prev)
        b->prev->next = b->next;
    else if (rr != NULL && rr->flying == b)
        rr->flying = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->next = b->prev = NULL;
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *)&b->timer, batch_freed);
    if (rr != NULL && rr->ac != NULL)
        kick(rr); /* what queued up meanwhile goes now */
}

static bool valid_reply(const redisReply *r, const struct batch *b)
{
    size_t n = 1;

    for (struct item *it = b->items; it != NULL; it = it->next)
        if (it->lead)
            n += 1 + it->n;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return false;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return false;
    return true;
}

static void send_batch(struct batch *b);

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct batch *b = privdata;
    struct rl_redis *rr = b->rr;
    redisReply *reply = r;

    (void)ac;
    if (b->done) {
        b->replied = true;
        batch_finish(b); /* the timeout answered already */
        return;
    }
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !b->evalled &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* Redis restarted or flushed its scripts: send the script itself. */
        b->evalled = true;
        b->argv[0] = "EVAL";
        b->argvlen[0] = 4;
        b->argv[1] = script;
        b->argvlen[1] = sizeof(script) - 1;
        send_batch(b);
        return;
    }
    b->done = true;
    b->replied = true;
    if (valid_reply(reply, b)) {
        came_back(rr);
        deliver(b, true, reply);
    } else {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            sl_log(SL_LOG_ERROR, NULL, "redis script error: %s", reply->str);
        if (rr != NULL && reply == NULL && rr->state != RS_DOWN)
            went_down(rr, "connection lost");
        deliver(b, false, NULL);
    }
    batch_finish(b);
}

static void on_batch_timeout(uv_timer_t *t)
{
    struct batch *b = t->data;
    struct rl_redis *rr = b->rr;

    if (b->done)
        return;
    b->done = true;
    deliver(b, false, NULL);
    /* A Redis that does not answer in time is treated as down. Dropping the
     * connection makes hiredis call on_reply() for this batch (done) and for
     * every other one in flight (failed there). */
    if (rr != NULL && rr->ac != NULL)
        drop(rr, "no answer within redis.timeout");
    if (!b->replied && (rr == NULL || rr->ac == NULL)) {
        /* on_reply() was called during drop(); nothing more to wait for. */
    }
}

static void send_batch(struct batch *b)
{
    struct rl_redis *rr = b->rr;

    if (rr->ac == NULL ||
        redisAsyncCommandArgv(rr->ac, on_reply, b, b->argc, b->argv, b->argvlen) != REDIS_OK) {
        b->done = true;
        b->replied = true;
        deliver(b, false, NULL);
        batch_finish(b);
        return;
    }
    sl__rl_uvev_flush(rr->ac);
}

/* Decimal digits of v into p (room for 21); their count. snprintf() was a
 * visible share of the cost of a batch. */
static size_t fmt_i64(char *p, int64_t v)
{
    char tmp[24];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        p[len++] = '-';
    while (n > 0)
        p[len++] = tmp[--n];
    return len;
}

/* Whether b asks exactly what a asks (a decision, same buckets, same
 * limits): then the two go to Redis as one group. */
static bool same_ask(const struct item *a, const size_t *ka, const struct item *b, const size_t *kb)
{
    if (a->n != b->n || a->cost != 1 || b->cost != 1)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (ka[i] != kb[i] || a->limits[i].t_us != b->limits[i].t_us ||
            a->limits[i].burst != b->limits[i].burst ||
            a->limits[i].max_delay_us != b->limits[i].max_delay_us)
            return false;
    return true;
}

/* Build one EVALSHA from up to BATCH_MAX queued items. */
static struct batch *build(struct rl_redis *rr)
{
    struct batch *b = sl_calloc(1, sizeof(*b), "the rate_limit plugin");
    const char *keys[BATCH_MAX * RL_MAX_LIMITS];
    size_t n_keys = 0, n_args = 0, n_groups = 0, slots, off = 0;
    size_t kidx[BATCH_MAX][RL_MAX_LIMITS];
    struct item **last = &b->items, *prev = NULL;
    char *p;

    b->rr = rr;
    while (rr->queue != NULL && b->n_items < BATCH_MAX) {
        struct item *it = rr->queue;

        rr->queue = it->next;
        rr->queued--;
        it->next = NULL;
        *last = it;
        last = &it->next;
        for (size_t i = 0; i < it->n; i++) {
            size_t k;

            for (k = 0; k < n_keys; k++)
                if (strcmp(keys[k], it->keys[i]) == 0)
                    break;
            if (k == n_keys)
                keys[n_keys++] = it->keys[i];
            kidx[b->n_items][i] = k + 1; /* Lua counts from 1 */
        }
        it->lead = prev == NULL || !same_ask(prev, kidx[b->n_items - 1], it, kidx[b->n_items]);
        if (it->lead) {
            n_groups++;
            n_args += 2 + 6 * it->n;
        }
        prev = it;
        b->n_items++;
    }
    if (rr->queue == NULL)
        rr->tail = &rr->queue;
    b->argc = (int)(3 + n_keys + 1 + n_args);
    b->argv = sl_calloc((size_t)b->argc, sizeof(*b->argv), "the rate_limit plugin");
    b->argvlen = sl_calloc((size_t)b->argc, sizeof(*b->argvlen), "the rate_limit plugin");
    slots = 1 + n_args + 1;
    b->nums = p = sl_malloc(slots * 24, "the rate_limit plugin");
    b->argv[off] = "EVALSHA";
    b->argvlen[off++] = 7;
    b->argv[off] = sha;
    b->argvlen[off++] = 40;
#define NUM(v)                                                                                     \
    do {                                                                                           \
        b->argv[off] = p;                                                                          \
        b->argvlen[off++] = fmt_i64(p, (int64_t)(v));                                              \
        p += 24;                                                                                   \
    } while (0)
    NUM(n_keys);
    for (size_t k = 0; k < n_keys; k++) {
        b->argv[off] = keys[k];
        b->argvlen[off++] = strlen(keys[k]);
    }
    NUM(n_groups);
    {
        struct item *it = b->items;
        size_t r = 0;

        while (it != NULL) {
            struct item *first = it;
            size_t fr = r, count = 0;

            /* The run of requests that ask the same as `first`. */
            do {
                count++;
                it = it->next;
                r++;
            } while (it != NULL && !it->lead);
            NUM(first->n);
            NUM(count);
            for (size_t i = 0; i < first->n; i++) {
                NUM(kidx[fr][i]);
                NUM(first->limits[i].t_us);
                NUM(first->limits[i].burst);
                NUM(first->limits[i].max_delay_us);
                NUM(first->cost);
                NUM(first->tats[i]);
            }
        }
    }
#undef NUM
    uv_timer_init(rr->loop, &b->timer);
    b->timer.data = b;
    return b;
}

static void on_check(uv_check_t *h)
{
    struct rl_redis *rr = h->data;

    uv_check_stop(&rr->check);
    rr->check_on = false;
    while (rr->queue != NULL && rr->flying == NULL) {
        uint64_t now = uv_now(rr->loop), due = rr->queue->at + rr->timeout_ms;
        struct batch *b = build(rr);

        b->next = rr->flying;
        if (rr->flying)
            rr->flying->prev = b;
        rr->flying = b;
        uv_timer_start(&b->timer, on_batch_timeout, due > now ? due - now : 1, 0);
        send_batch(b);
    }
}

static void kick(struct rl_redis *rr)
{
    if (!rr->check_on && rr->queue != NULL) {
        uv_check_start(&rr->check, on_check);
        rr->check_on = true;
    }
}

/* -- the connection --------------------------------------------------------------- */

static void on_connected(const redisAsyncContext *ac, int status)
{
    struct rl_redis *rr = ac->data;

    if (rr == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        rr->ac = NULL;
        went_down(rr, ac->errstr[0] ? ac->errstr : "cannot connect");
        return;
    }
    rr->state = RS_UP;
}

static void on_disconnected(const redisAsyncContext *ac, int status)
{
    struct rl_redis *rr = ac->data;

    (void)status;
    if (rr == NULL)
        return;
    if (rr->ac == ac)
        rr->ac = NULL;
    if (rr->state != RS_DOWN)
        went_down(rr, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    struct rl_redis *rr = ac->data;

    if (rr != NULL && reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        char why[160];

        snprintf(why, sizeof(why), "%s refused: %s", (const char *)privdata, reply->str);
        drop(rr, why);
    }
}

static void connect_redis(struct rl_redis *rr, const struct sl_redis_conf *c)
{
    redisAsyncContext *ac =
        c->unix_path ? redisAsyncConnectUnix(c->unix_path) : redisAsyncConnect(c->host, c->port);

    if (ac == NULL || ac->err) {
        went_down(rr, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return;
    }
    ac->data = rr;
    if (sl__rl_uvev_attach(ac, rr->loop) != REDIS_OK) {
        went_down(rr, "cannot attach to the loop");
        redisAsyncFree(ac);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connected);
    redisAsyncSetDisconnectCallback(ac, on_disconnected);
    rr->ac = ac;
    rr->state = RS_CONNECTING;
    /* Queued before anything else, so they go first once connected. */
    if (c->password != NULL)
        redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", c->password);
    if (c->db != 0)
        redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %u", c->db);
}

/* Is rr connected (or connecting) to what c describes? Else start over. */
static void follow_conf(struct rl_redis *rr, const struct sl_redis_conf *c)
{
    const char *pw = c->password ? c->password : "";

    rr->timeout_ms = c->timeout_ms;
    if (strcmp(rr->addr, c->address) == 0 && strcmp(rr->password, pw) == 0 && rr->db == c->db)
        return;
    if (rr->ac != NULL) {
        redisAsyncContext *ac = rr->ac;

        rr->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    snprintf(rr->addr, sizeof(rr->addr), "%s", c->address);
    snprintf(rr->password, sizeof(rr->password), "%s", pw);
    rr->db = c->db;
    rr->state = RS_DOWN;
    rr->retry_at = 0;
    rr->backoff_ms = BACKOFF_MIN_MS;
    rr->outage = false;
}

/* -- the store API ---------------------------------------------------------------- */

struct rl_redis *sl__rl_redis_new(uv_loop_t *loop)
{
    struct rl_redis *rr = sl_calloc(1, sizeof(*rr), "the rate_limit plugin");
    uv_once(&sha_once, make_sha);
    rr->loop = loop;
    rr->tail = &rr->queue;
    rr->backoff_ms = BACKOFF_MIN_MS;
    uv_check_init(loop, &rr->check);
    rr->check.data = rr;
    return rr;
}

static void rr_freed(uv_handle_t *h)
{
    free(h->data);
}

void sl__rl_redis_free(struct rl_redis *rr)
{
    if (rr == NULL)
        return;
    while (rr->queue != NULL) {
        struct item *it = rr->queue;

        rr->queue = it->next;
        free_item(it);
    }
    for (struct batch *b = rr->flying; b != NULL; b = b->next)
        b->rr = NULL;
    rr->flying = NULL;
    if (rr->ac != NULL) {
        redisAsyncContext *ac = rr->ac;

        rr->ac = NULL;
        ac->data = NULL;    /* a shutdown, not an outage: nothing to log */
        redisAsyncFree(ac); /* fails what is in flight */
    }
    uv_close((uv_handle_t *)&rr->check, rr_freed);
}

int sl__rl_redis_decide(struct rl_redis *rr, const struct sl_redis_conf *conf,
                        const struct sl_gcra_limit *limits, const char *const *keys,
                        const int64_t *tats, size_t n, int cost, rl_done_fn *done, void *arg)
{
    follow_conf(rr, conf);
    if (rr->state == RS_DOWN) {
        if (uv_now(rr->loop) < rr->retry_at) {
            atomic_fetch_add_explicit(&sl__rl_redis_errors, 1, memory_order_relaxed);
            return -1;
        }
        connect_redis(rr, conf);
        if (rr->state == RS_DOWN) {
            atomic_fetch_add_explicit(&sl__rl_redis_errors, 1, memory_order_relaxed);
            return -1;
        }
    }
    enqueue(rr, limits, keys, tats, n, cost, done, arg);
    return 0;
}

void sl__rl_redis_forget(struct rl_redis *rr, void *arg)
{
    for (struct item *it = rr->queue; it != NULL; it = it->next)
        if (it->arg == arg)
            it->done = NULL;
    for (struct batch *b = rr->flying; b != NULL; b = b->next)
        for (struct item *it = b->items; it != NULL; it = it->next)
            if (it->arg == arg)
                it->done = NULL;
}
