/*
 * What a reload would change: two checked configurations compared
 * structurally, for the admin API's POST /reload?dry_run=1 and for
 * "sluice -t --diff". Pure: no I/O, nothing applied.
 *
 * Settings are compared as the core parsed them (so "5s" and "5000ms" are
 * the same timeout, and an absent key equals its default); what the core
 * keeps opaque (a plugin's settings, a listener's or an upstream's tls:) is
 * compared as YAML subtrees, by value, ignoring positions and key order.
 *
 * Changes come in a fixed order: top-level settings, listeners (by address),
 * upstreams (by name), the top-level plugins: defaults, routes (by name);
 * within each kind, what the new config has in its order, then what it no
 * longer has in the old order.
 *
 * A detail never shows a secret: a value under a key that names one
 * (token, password, secret, keys, authorization, cookie...), a header's
 * value whose name looks secret, and any value (or name) that came from
 * the environment through ${VAR} (the loader marks those nodes) is
 * reported as "changed (not shown)".
 */
#ifndef SL_CONFIG_DIFF_H
#define SL_CONFIG_DIFF_H

#include <stddef.h>

#include "sluice/arena.h"

#include "base/sbuf.h"
#include "config/config.h"

enum sl_diff_op {
    SL_DIFF_ADDED,
    SL_DIFF_REMOVED,
    SL_DIFF_CHANGED,
};

/* One thing that would change: "~ upstream users: balance round_robin -> p2c". */
struct sl_diff_change {
    const char *kind; /* "setting", "listener", "upstream", "plugins", "route" */
    const char *name; /* the setting's key, the address, the name; "defaults" */
    enum sl_diff_op op;
    const char **details; /* human-readable, one fact each */
    size_t n_details, cap_details;
    struct sl_diff_change *next;
};

/* A list of changes; everything in it lives in the arena given to init. */
struct sl_diff {
    struct sl_arena *arena;
    struct sl_diff_change *head, **tail;
    size_t n;
    /* While a change is compared: the YAML nodes its fields were read from
     * (diff_fields.h, sl__diff_from()), to tell values from ${VAR}. */
    const struct sl_node *from_a, *from_b;
};

/* One side of a comparison: a checked config (its YAML tree, which the
 * config's nodes lead up to, says which values came from ${VAR}).
 * Borrowed. */
struct sl_diff_side {
    const struct sl_config *conf;
};

/* Start an empty list whose changes are allocated in a (borrowed). */
void sl__diff_init(struct sl_diff *d, struct sl_arena *a);

/*
 * Append to d what replacing old by new would change. Both configs must
 * have loaded without errors (their YAML trees are read too). Any thread;
 * reads only.
 */
void sl__config_diff(struct sl_diff *d, const struct sl_diff_side *old,
                     const struct sl_diff_side *new);

/*
 * A change begun with sl__diff_begin() is appended by sl__diff_end() when it
 * adds or removes something or when it collected a detail (a "changed" with
 * no detail is dropped). Used by the comparison and to rebuild a list from
 * its JSON (the CLI).
 */
struct sl_diff_change *sl__diff_begin(struct sl_diff *d, const char *kind, const char *name,
                                      enum sl_diff_op op);
void sl__diff_detail(struct sl_diff *d, struct sl_diff_change *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sl__diff_end(struct sl_diff *d, struct sl_diff_change *c);

/* "added", "removed", "changed"; and back (-1 for anything else). */
const char *sl__diff_op_name(enum sl_diff_op op);
int sl__diff_op_parse(const char *s);

/* The changes as a JSON array of {"kind", "name", "change", "details"}. */
void sl__diff_json(const struct sl_diff *d, struct sl_sbuf *out);

/* One line per change: "+ route api", "- upstream old",
 * "~ upstream users: targets +127.0.0.1:9003; balance round_robin -> p2c". */
void sl__diff_text(const struct sl_diff *d, struct sl_sbuf *out);

#endif
