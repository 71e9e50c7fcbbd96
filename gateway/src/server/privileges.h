/*
 * Dropping root: user: and group: once the listeners are bound and the key
 * files read.
 */
#ifndef SL_SERVER_PRIVILEGES_H
#define SL_SERVER_PRIVILEGES_H

#include <stddef.h>

#include "config/config.h"

/*
 * Become c's user (its groups, or c's group) for good. 0 when done or when
 * nothing is asked (or the process already is that user); -1 with why set
 * (switching needs root, a call failed, or root could be regained).
 */
int sl__privileges_drop(const struct sl_config *c, char *why, size_t n);

/* A reload asks for another user or group than the gateway started with:
 * a warning that says it takes effect at start only, or NULL. */
const char *sl__privileges_changed(const struct sl_config *next);

#endif
