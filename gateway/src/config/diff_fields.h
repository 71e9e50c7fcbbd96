/*
 * The comparisons diff_config.c is made of (private to the config diff):
 * one field of each kind, and whole YAML subtrees. Each adds one detail
 * "WHAT OLD -> NEW" to the change c when the two sides differ, nothing when
 * they are equal; WHAT may be "" when the change's name says it all
 * ("~ setting workers: 2 -> 4").
 */
#ifndef SL_CONFIG_DIFF_FIELDS_H
#define SL_CONFIG_DIFF_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/diff.h"

/*
 * The YAML nodes the fields compared next were read from, on each side
 * (NULL: absent), until the next sl__diff_begin() (which clears them).
 * The WHAT of each helper below is then also a key path under them
 * ("timeouts.connect"; "" for the nodes themselves): when the value there
 * came from ${VAR} on either side, the detail reads "WHAT changed (not
 * shown)" (or "(unset) -> (set)"), never the value. Borrowed.
 */
void sl__diff_from(struct sl_diff *d, const struct sl_node *a, const struct sl_node *b);

/* Whether the value at the key path what under the nodes sl__diff_from()
 * named came, on either side, from the environment. */
bool sl__diff_hidden(const struct sl_diff *d, const char *what);

/* The same for the node at what alone, not what is under it: whether a
 * section that is on or off ("health_check: ${HC}") was written so. */
bool sl__diff_hidden_scalar(const struct sl_diff *d, const char *what);

/* Whether n, or anything under it (keys included), came from ${VAR}; false
 * for NULL. */
bool sl__diff_env(const struct sl_node *n);

/* How a change is named: name, or "(not shown)" when env says that it
 * came from ${VAR} (a route's name, a listener's address, an upstream's
 * key). */
const char *sl__diff_name(const char *name, bool env);

/* Whether a header's value is not to be shown, by its name: authorization,
 * cookie, token, key, secret, password, session... (case-insensitive). */
bool sl__diff_secret_header(const char *name);

/* Strings; NULL reads "(unset)". */
void sl__diff_str(struct sl_diff *d, struct sl_diff_change *c, const char *what, const char *a,
                  const char *b);
void sl__diff_uint(struct sl_diff *d, struct sl_diff_change *c, const char *what, uint64_t a,
                   uint64_t b);
/* Milliseconds, written back as the config would say them ("250ms", "5s", "1m"). */
void sl__diff_ms(struct sl_diff *d, struct sl_diff_change *c, const char *what, uint64_t a,
                 uint64_t b);
/* Bytes, as "512", "16k", "10m". */
void sl__diff_size(struct sl_diff *d, struct sl_diff_change *c, const char *what, uint64_t a,
                   uint64_t b);
void sl__diff_bool(struct sl_diff *d, struct sl_diff_change *c, const char *what, bool a, bool b);
/* A secret (a token, a password): whether it is set, or that it changed;
 * never its value. */
void sl__diff_secret(struct sl_diff *d, struct sl_diff_change *c, const char *what, const char *a,
                     const char *b);

/* "250ms", "5s", "1m"... into buf (32 bytes); returns buf. */
const char *sl__diff_fmt_ms(char *buf, uint64_t ms);

/*
 * Compare two YAML subtrees by value (positions and key order ignored; an
 * absent node, an empty value and an empty map are alike). Maps (or a map
 * and nothing) are compared key by key, with dotted paths under what
 * ("tls.min_version", "rate_limit.rate"); anything else is compared whole.
 * A value under a key that names a secret (token, password, secret, keys,
 * authorization, cookie...), a header value whose header looks secret,
 * and anything that came from ${VAR} are never shown.
 */
void sl__diff_nodes(struct sl_diff *d, struct sl_diff_change *c, const char *what,
                    const struct sl_node *a, const struct sl_node *b);

/* The root of the YAML tree c was read from, or NULL (none, which a
 * checked config always has). Borrowed from c's generation. */
const struct sl_node *sl__diff_root(const struct sl_config *c);

/* Whether two subtrees hold the same values (the equality above). */
bool sl__diff_nodes_equal(const struct sl_node *a, const struct sl_node *b);

#endif
