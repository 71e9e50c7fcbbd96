/*
 * rate_limit's Redis store: hiredis on the worker's libuv loop (redis_uv.c).
 */
#ifndef SL_RL_REDIS_UV_H
#define SL_RL_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Drive ac from loop: REDIS_OK, or REDIS_ERR (ac is untouched then). */
int sl__rl_uvev_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* Write a command's bytes right after it was queued, once connected; the
 * socket is watched for writability only if they did not all fit. */
void sl__rl_uvev_flush(redisAsyncContext *ac);

#endif
