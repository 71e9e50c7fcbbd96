/*
 * What the admin API tells beyond counters, for operators and the dashboard:
 * the routes as loaded (GET /routes) and the outcome of the last reload
 * (the "last_reload" member of GET /status). Main thread only.
 */
#ifndef SL_ADMIN_DATA_H
#define SL_ADMIN_DATA_H

#include <stdbool.h>

struct sl_sbuf;

/*
 * Append the current generation's routes as JSON: {"generation": N,
 * "routes": [{"name", "match": {"host", "path", "path_exact", "path_regex",
 * "methods": [...], "headers": {...}}, "upstream", "strip_prefix",
 * "plugins": [names in phase order]}], "default_plugins": [...]}.
 */
void sl__admin_routes_json(struct sl_sbuf *b);

/*
 * Remember a reload's outcome (sl__reload() calls this for SIGHUP and POST
 * /reload alike): ok, or failed with errors (the report users see, with
 * file:line:col; copied, may be NULL).
 */
void sl__admin_reload_note(bool ok, const char *errors);

/* Append the last reload as JSON: null before the first one, else {"result":
 * "ok"|"failed", "at": ISO 8601, "generation": the one serving since,
 * "errors": text or null}. */
void sl__admin_reload_json(struct sl_sbuf *b);

#endif
