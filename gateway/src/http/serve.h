/*
 * The HTTP layer as the layers below see it: the worker hooks (accepting,
 * draining, stopping) and the error log's request context. main installs
 * both once, at start, with sl__http_install().
 */
#ifndef SL_HTTP_SERVE_H
#define SL_HTTP_SERVE_H

#include "core/worker.h"

extern const struct sl_worker_hooks sl__http_worker_hooks;

/* Install the worker hooks and the log context. Main thread, before any
 * worker starts or any request is logged. */
void sl__http_install(void);

#endif
