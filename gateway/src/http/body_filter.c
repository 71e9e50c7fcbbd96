/*
 * Response body filters: a chain of at most SL_BODY_FILTERS_MAX plugin
 * filters, run in plugin order, in front of the protocol's client side.
 * Bytes a filter writes with sl_resp_body_write() go to the next filter,
 * or, from the last, to the client (copied: a filter's output buffer is
 * its own). A flush or the end reaches each filter after the previous one
 * has written what it held. A filter that fails marks the chain broken;
 * the next flush, which the upstream side calls after every batch it
 * parsed, cuts the client's connection (calling abort from inside the
 * upstream parser's callback would pull the request out from under it).
 */
#include "http/body_filter.h"

#include <string.h>

#include "http/request.h"

struct sl_filters {
    const struct sl_downstream *down; /* the client side under the filters */
    struct {
        const struct sl_body_filter *f;
        void *state;
    } chain[SL_BODY_FILTERS_MAX];
    unsigned n;
    unsigned pos; /* the filter whose body() runs */
    bool started; /* switched in front of the client side */
    bool pending; /* bytes went in since the last flush */
    bool ended;   /* SL_BODY_END went through */
    bool broken;  /* a filter failed: the response is cut */
    bool released;
};

/* Give filter i (or, past the last, the client) bytes and flags. */
static void run(struct sl_req *req, unsigned i, const char *p, size_t len, unsigned flags)
{
    struct sl_filters *fs = req->filters;
    unsigned saved = fs->pos;

    if (fs->broken)
        return;
    if (i == fs->n) {
        if (len > 0)
            fs->down->body(req, NULL, p, len);
        return;
    }
    fs->pos = i;
    if (fs->chain[i].f->body(req, fs->chain[i].state, p, len, flags) != 0)
        fs->broken = true;
    fs->pos = saved;
    if (flags != 0)
        run(req, i + 1, NULL, 0, flags);
}

int sl_resp_body_filter(struct sl_req *req, const struct sl_body_filter *f, void *state)
{
    struct sl_filters *fs = req->filters;

    if (f == NULL || f->body == NULL || !req->resp_proxied || req->resp_no_body ||
        (fs != NULL && fs->started))
        return -1;
    if (fs == NULL) {
        fs = sl_arena_calloc(&req->arena, sizeof(*fs));
        if (fs == NULL)
            return -1;
        req->filters = fs;
    }
    if (fs->n == SL_BODY_FILTERS_MAX)
        return -1;
    fs->chain[fs->n].f = f;
    fs->chain[fs->n].state = state;
    fs->n++;
    return 0;
}

int sl_resp_body_write(struct sl_req *req, const char *p, size_t len)
{
    struct sl_filters *fs = req->filters;

    if (fs == NULL || !fs->started || fs->broken)
        return -1;
    run(req, fs->pos + 1, p, len, 0);
    return fs->broken ? -1 : 0;
}

/* -- the filtering client side ------------------------------------------------- */

static void head(struct sl_req *req, const struct sl_resp_head *h)
{
    req->filters->down->head(req, h);
}

static void interim(struct sl_req *req, const struct sl_resp_head *h)
{
    req->filters->down->interim(req, h);
}

static void body(struct sl_req *req, struct sl_buf *b, const char *p, size_t len)
{
    (void)b; /* the filters read the bytes now; nothing keeps the buffer */
    if (len == 0)
        return;
    req->filters->pending = true;
    run(req, 0, p, len, 0);
}

static void end(struct sl_req *req, const struct sl_head *trailers)
{
    struct sl_filters *fs = req->filters;

    fs->ended = true;
    run(req, 0, NULL, 0, SL_BODY_END);
    if (!fs->broken)
        fs->down->end(req, trailers);
}

static int flush(struct sl_req *req, bool hold)
{
    struct sl_filters *fs = req->filters;

    if (fs->pending && !fs->ended) {
        fs->pending = false;
        run(req, 0, NULL, 0, SL_BODY_FLUSH);
        hold = false; /* what the filters held is out of them: send it */
    }
    if (fs->broken) {
        fs->down->abort(req);
        return -1;
    }
    return fs->down->flush(req, hold);
}

static size_t queued(const struct sl_req *req)
{
    return req->filters->down->queued(req);
}

static void stalled(struct sl_req *req, bool on)
{
    req->filters->down->stalled(req, on);
}

static void pause_(struct sl_req *req)
{
    req->filters->down->pause(req);
}

static void resume(struct sl_req *req)
{
    req->filters->down->resume(req);
}

static void done(struct sl_req *req)
{
    req->filters->down->done(req);
}

static void abort_(struct sl_req *req)
{
    req->filters->down->abort(req);
}

static const struct sl_downstream filtering = {
    .head = head,
    .interim = interim,
    .body = body,
    .end = end,
    .flush = flush,
    .queued = queued,
    .stalled = stalled,
    .pause = pause_,
    .resume = resume,
    .done = done,
    .abort = abort_,
};

void sl__body_filters_start(struct sl_req *req, struct sl_resp_head *rh)
{
    struct sl_filters *fs = req->filters;
    struct sl_head *h = &req->resp;

    if (fs == NULL || fs->n == 0 || fs->started)
        return;
    /* The filters make a new body: its length is the framing's business. */
    for (uint32_t i = 0; i < h->n; i++)
        if (sl_str_caseeq_lit(h->fields[i].name, "Content-Length"))
            h->fields[i].drop = true;
    rh->length_known = false;
    fs->down = req->down;
    fs->started = true;
    req->down = &filtering;
}

void sl__body_filters_release(struct sl_req *req)
{
    struct sl_filters *fs = req->filters;

    if (fs == NULL || fs->released)
        return;
    fs->released = true;
    for (unsigned i = 0; i < fs->n; i++)
        if (fs->chain[i].f->done != NULL)
            fs->chain[i].f->done(fs->chain[i].state);
    if (fs->started)
        req->down = fs->down;
    req->filters = NULL;
}
