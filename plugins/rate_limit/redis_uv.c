/*
 * rate_limit's Redis store: hiredis on the worker's libuv loop.
 *
 * Our own glue between hiredis and the loop. The adapter hiredis 0.14 ships
 * ignores a poll error, and libuv 1.44 reports a refused non-blocking
 * connect as one: hiredis would never learn that the connect failed, and
 * every decision would wait the full redis.timeout. Here an error is passed
 * to hiredis as readiness, so it finds the socket error itself.
 */
#include "redis_uv.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

struct uvev {
    redisAsyncContext *ac; /* NULL once hiredis let go */
    uv_poll_t poll;
    int events; /* what the poll watches */
    int want;   /* what hiredis asked for */
};

static void uvev_ready(uv_poll_t *h, int status, int events)
{
    struct uvev *e = h->data;

    if (e->ac == NULL)
        return;
    if (status < 0) {
        /* Let hiredis look: a write while connecting reads SO_ERROR. */
        if (!(e->ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(e->ac);
        else
            redisAsyncHandleRead(e->ac);
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(e->ac);
    if (e->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

/* Make the poll watch what hiredis wants. Each change costs epoll_ctl()
 * calls (uv_poll_start() removes and re-adds the fd), so only real changes
 * are applied. */
static void uvev_apply(struct uvev *e)
{
    if (e->want == e->events)
        return;
    e->events = e->want;
    if (e->events)
        uv_poll_start(&e->poll, e->events, uvev_ready);
    else
        uv_poll_stop(&e->poll);
}

static void uvev_add_read(void *p)
{
    struct uvev *e = p;

    e->want |= UV_READABLE;
    uvev_apply(e);
}

static void uvev_del_read(void *p)
{
    struct uvev *e = p;

    e->want &= ~UV_READABLE;
    uvev_apply(e);
}

/* Once connected, a command's bytes are written by uvev_flush() right after
 * it is queued, and the socket is watched for writability only if they did
 * not all fit: no epoll_ctl() churn per batch. */
static void uvev_add_write(void *p)
{
    struct uvev *e = p;

    e->want |= UV_WRITABLE;
    if (e->ac == NULL || !(e->ac->c.flags & REDIS_CONNECTED))
        uvev_apply(e); /* connecting: writability says it connected */
}

static void uvev_del_write(void *p)
{
    struct uvev *e = p;

    e->want &= ~UV_WRITABLE;
    uvev_apply(e);
}

void sl__rl_uvev_flush(redisAsyncContext *ac)
{
    struct uvev *e = ac->ev.data;

    if (e == NULL || !(e->want & UV_WRITABLE) || !(ac->c.flags & REDIS_CONNECTED))
        return;
    redisAsyncHandleWrite(ac);
    if (e->ac != NULL)
        uvev_apply(e); /* still wants to write: let the poll say when */
}

static void uvev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void uvev_cleanup(void *p)
{
    struct uvev *e = p;

    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, uvev_closed);
}

int sl__rl_uvev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct uvev *e = calloc(1, sizeof(*e));

    if (e == NULL || uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return REDIS_ERR;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = uvev_add_read;
    ac->ev.delRead = uvev_del_read;
    ac->ev.addWrite = uvev_add_write;
    ac->ev.delWrite = uvev_del_write;
    ac->ev.cleanup = uvev_cleanup;
    return REDIS_OK;
}
