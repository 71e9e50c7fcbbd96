/*
 * Reloads: a new generation is read and checked on the main thread and
 * swapped in only if valid (new requests take it, requests in flight finish
 * on theirs); the listeners, the health checker, the resolver and the admin
 * API follow it. SIGHUP, POST /reload and a DNS change all come here.
 */
#include "server/reload.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "config/gen.h"
#include "core/worker.h"
#include "http/access_log.h"
#include "http/metrics.h"
#include "server/admin.h"
#include "server/admin_data.h"
#include "server/health.h"
#include "server/notify.h"
#include "server/privileges.h"
#include "upstream/resolve.h"

static const char *conf_file;
static uint32_t n_workers;

void sl__reload_init(const char *file, uint32_t workers)
{
    conf_file = file;
    n_workers = workers;
}

/* Apply the settings that live outside generations: log level and sinks. */
int sl__reload_apply_logs(const struct sl_config *c)
{
    int rc;

    sl_log_level = c->log_level;
    sl__log_set_json(c->log_json);
    rc = sl__log_open(c->error_log_path);
    if (rc != 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot open error log %s: %s", c->error_log_path,
               strerror(-rc));
        return rc;
    }
    rc = sl__access_log_open(c->access_log == SL_ACCESS_OFF    ? NULL
                             : c->access_log == SL_ACCESS_FILE ? c->access_log_path
                                                               : "stdout",
                             c->access_buffer);
    if (rc != 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot open access log %s: %s", c->access_log_path,
               strerror(-rc));
        return rc;
    }
    return 0;
}

/* The shortest resolve_interval among upstreams that use host names. */
static uint64_t resolve_interval(const struct sl_gen *g)
{
    uint64_t min = 0;

    for (size_t i = 0; i < g->conf->n_upstreams; i++) {
        const struct sl_upstream_conf *u = &g->conf->upstreams[i];
        bool names = false;

        for (size_t t = 0; t < u->n_targets; t++)
            names |= u->targets[t].from_name;
        if (names && u->resolve_interval_ms != 0 && (min == 0 || u->resolve_interval_ms < min))
            min = u->resolve_interval_ms;
    }
    return min;
}

static void names_changed(void);

/* g was just published: point the health checker and the resolver at it. */
void sl__reload_follow(struct sl_gen *g)
{
    sl__health_sync(uv_default_loop(), g);
    sl__resolver_start(uv_default_loop(), resolve_interval(g), names_changed);
}

/* Swap in a checked generation g built from file text; old is current.
 * 0, or -1 with why set (the listeners could not be opened; g is freed). */
static int install(struct sl_gen *g, struct sl_gen *old, char *why, size_t why_len)
{
    if (g->conf->workers != n_workers && old != NULL && g->conf->workers != old->conf->workers)
        sl_log(SL_LOG_WARN, NULL, "workers: %u needs a restart; keeping %u", g->conf->workers,
               n_workers);
    if (sl__privileges_changed(g->conf) != NULL)
        sl_log(SL_LOG_WARN, NULL, "%s", sl__privileges_changed(g->conf));
    if (sl__listeners_prepare(g, n_workers, why, why_len) != 0) {
        sl_log(SL_LOG_ERROR, NULL, "reload failed: %s; the running configuration keeps serving",
               why);
        sl__gen_unref(g);
        return -1;
    }
    sl__reload_apply_logs(g->conf);
    g->id = old->id + 1;
    sl__gen_publish(g);
    sl__workers_reload();
    sl__reload_follow(g);
    sl__admin_apply(uv_default_loop(), g->conf, sl__reload, n_workers);
    return 0;
}

/* The addresses behind an upstream host name changed: rebuild the current
 * generation from the same text, with the new targets. */
static void names_changed(void)
{
    struct sl_gen *cur = atomic_load(&sl__gen_current), *g;
    char *report = NULL, why[512];
    int errors = 0;

    g = sl__gen_load_text(cur->file, cur->text, cur->text_len, n_workers, &report, &errors);
    free(report);
    if (g == NULL) {
        sl_log(SL_LOG_ERROR, NULL, "could not rebuild the configuration after a DNS change");
        return;
    }
    if (install(g, cur, why, sizeof(why)) == 0)
        sl_log(SL_LOG_INFO, NULL, "upstream addresses changed: generation %llu",
               (unsigned long long)g->id);
}

/* Tell the service manager that a reload ended: READY=1 either way (the
 * new generation serves, or the old one still does), and in STATUS= which
 * one and, for a failed reload, its first error line (failure: the report
 * or the reason; NULL on success). */
static void notify_done(uint64_t gen, int errors, const char *failure)
{
    char status[768];
    const char *first = failure ? strstr(failure, ": error: ") : NULL;
    int n;

    if (failure == NULL) {
        snprintf(status, sizeof(status), "serving generation %llu (reloaded)",
                 (unsigned long long)gen);
        sl__notify_ready(status);
        return;
    }
    while (first != NULL && first > failure && first[-1] != '\n')
        first--; /* back to the start of that line */
    first = first ? first : failure;
    n = (int)strcspn(first, "\n");
    snprintf(status, sizeof(status),
             "reload failed (%d error%s: %.*s); generation %llu keeps serving", errors,
             errors == 1 ? "" : "s", n > 400 ? 400 : n, first, (unsigned long long)gen);
    sl__notify_ready(status);
}

/*
 * Reload the file: 0 and the new generation, or -1 and the errors (heap,
 * the caller frees) while the running configuration keeps serving. SIGHUP
 * and the admin API's POST /reload both come here.
 */
int sl__reload(uint64_t *generation, char **errors_out)
{
    struct sl_gen *cur = atomic_load(&sl__gen_current), *g;
    char *report = NULL, why[512];
    int errors = 0;

    sl_log(SL_LOG_INFO, NULL, "reloading %s", conf_file);
    snprintf(why, sizeof(why), "reloading %s", conf_file);
    sl__notify_reloading(why);
    g = sl__gen_load(conf_file, n_workers, &report, &errors);
    if (g == NULL) {
        sl_log(SL_LOG_ERROR, NULL,
               "reload failed, %d error%s; the running configuration "
               "(generation %llu) keeps serving:",
               errors, errors == 1 ? "" : "s", (unsigned long long)cur->id);
        if (report != NULL)
            sl__log_report(SL_LOG_ERROR, report);
        sl__metrics_reload(false);
        sl__admin_reload_note(false, report ? report : "the file could not be read");
        notify_done(cur->id, errors, report ? report : "the file could not be read");
        *errors_out = report;
        return -1;
    }
    if (report != NULL)
        sl__log_report(SL_LOG_WARN, report); /* warnings */
    free(report);
    if (install(g, cur, why, sizeof(why)) != 0) {
        sl__metrics_reload(false);
        sl__admin_reload_note(false, why);
        notify_done(cur->id, 1, why);
        *errors_out = sl__xstrdup(why);
        return -1;
    }
    sl_log(SL_LOG_INFO, NULL, "configuration reloaded: generation %llu", (unsigned long long)g->id);
    sl__metrics_reload(true);
    sl__admin_reload_note(true, NULL);
    notify_done(g->id, 0, NULL);
    *generation = g->id;
    return 0;
}
