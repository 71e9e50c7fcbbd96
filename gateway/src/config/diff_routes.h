/*
 * The routes and plugins half of sl__config_diff() (private to the config
 * diff; diff_routes.c).
 */
#ifndef SL_CONFIG_DIFF_ROUTES_H
#define SL_CONFIG_DIFF_ROUTES_H

#include "config/diff.h"

/*
 * The top-level plugins: defaults, as one change "plugins defaults": the
 * plugins every route starts from, added, removed or with other settings.
 */
void sl__diff_default_plugins(struct sl_diff *d, const struct sl_diff_side *old,
                              const struct sl_diff_side *new);

/*
 * The routes, by name: match, upstream, strip_prefix, the position of a
 * path_regex route, and the plugins the route's own plugins: names (a
 * change it inherits from the defaults is reported there, once).
 */
void sl__diff_routes(struct sl_diff *d, const struct sl_diff_side *old,
                     const struct sl_diff_side *new);

#endif
