/*
 * Reloads (reload.c): main thread only.
 */
#ifndef SL_SERVER_RELOAD_H
#define SL_SERVER_RELOAD_H

#include <stdint.h>

struct sl_config;
struct sl_gen;

/* The file reloads read, and the worker count (fixed at start). */
void sl__reload_init(const char *conf_file, uint32_t n_workers);

/* Apply the settings that live outside generations: the log level and the
 * log files. 0 or a negative errno (logged). */
int sl__reload_apply_logs(const struct sl_config *c);

/* g was just published: point the health checker and the resolver at it. */
void sl__reload_follow(struct sl_gen *g);

/*
 * Reload the file: 0 and the new generation, or -1 and the errors (heap,
 * the caller frees) while the running configuration keeps serving. SIGHUP
 * and the admin API's POST /reload both come here.
 */
int sl__reload(uint64_t *generation, char **errors_out);

#endif
