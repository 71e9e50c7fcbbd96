/*
 * Tracing the keys the config parsers accept: while sl__key_trace_on is
 * set, every map a parser checks with sl_conf_keys() (the core's sections
 * and every plugin's), and every plugins: map, records where it is and the
 * keys it allows. sluice-keys prints the result, which the documentation
 * test compares with sluice.yaml(5). Main thread only, like parsing.
 *
 * A place is written as a key path with "[]" for a list's items and "*"
 * for a key the user names (an upstream's name): "listen[].tls.min_version",
 * "upstreams.*.targets[].weight", "routes[].plugins.rate_limit.burst".
 */
#ifndef SLUICE_CONF_KEY_TRACE_H
#define SLUICE_CONF_KEY_TRACE_H

#include <stdbool.h>
#include <stdio.h>

#include "sluice/conf.h"

extern bool sl__key_trace_on;

/* map (any node a parser expected a map at) allows each key of allowed
 * (NULL-terminated). Maps the loader made up without a place in the file
 * (parent NULL and not the root) are not traced: pass is_root for the root. */
void sl__key_trace_map(const struct sl_node *map, bool is_root, const char *const *allowed);

/* map allows key (one at a time, for maps whose keys come from a table). */
void sl__key_trace_key(const struct sl_node *map, const char *key);

/* Every key path traced so far, sorted, once each, one a line. */
void sl__key_trace_print(FILE *f);

/* Forget what was traced (the nodes it refers to are about to be freed). */
void sl__key_trace_clear(void);

#endif
