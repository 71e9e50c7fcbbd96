/*
 * sluice - the command line, signals and reloads.
 *
 *   sluice [-c FILE]        run
 *   sluice -t [-c FILE]     check the config and exit
 *   sluice -V               versions
 *
 * The main thread loads configs and owns the listening sockets; the workers
 * serve. SIGHUP reloads, SIGTERM/SIGINT stop gracefully, SIGUSR1 reopens logs.
 */
#include <getopt.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "http/access_log.h"
#include "server/admin.h"
#include "config/gen.h"
#include "server/health.h"
#include "upstream/resolve.h"
#include "tls/tls.h"
#include "base/log.h"
#include "http/metrics.h"
#include "http/serve.h"
#include "config/plugins.h"
#include "base/util.h"
#include "core/worker.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define DEFAULT_CONF "/etc/sluice/sluice.yaml"

static const char *conf_file = DEFAULT_CONF;
static uint32_t n_workers;
static uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice [-c FILE] [-t] [-V]\n"
               "  -c FILE  configuration file (default " DEFAULT_CONF ")\n"
               "  -t       check the configuration and exit\n"
               "  -V       print the version and the library versions, and exit\n");
}

static void print_versions(void)
{
    char pcre[64] = "";

    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    printf("sluice %s\n", SL_VERSION);
    printf("  libuv %s\n", uv_version_string());
    printf("  llhttp %d.%d.%d\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
    printf("  %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("  libyaml %s\n", yaml_get_version_string());
    printf("  pcre2 %s\n", pcre);
    /* What the plugins link, by their own account. */
    for (size_t i = 0; i < sl__n_plugins; i++)
        if (sl__plugins[i]->versions != NULL)
            printf("  %s (%s)\n", sl__plugins[i]->versions(), sl__plugins[i]->name);
}

/* Print a config report (errors and warnings) to f. */
static void print_report(FILE *f, const char *report)
{
    if (report != NULL)
        fputs(report, f);
}

/* Apply the settings that live outside generations: log level and sinks. */
static int apply_logs(const struct sl_config *c)
{
    int rc;

    sl_log_level = c->log_level;
    rc = sl__log_open(c->error_log_path);
    if (rc != 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot open error log %s: %s", c->error_log_path,
               strerror(-rc));
        return rc;
    }
    rc = sl__access_log_open(c->access_log == SL_ACCESS_OFF    ? NULL
                             : c->access_log == SL_ACCESS_FILE ? c->access_log_path
                                                               : "stdout");
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
static int reload(uint64_t *generation, char **errors_out);

/* g was just published: point the health checker and the resolver at it. */
static void follow(struct sl_gen *g)
{
    sl__health_sync(uv_default_loop(), g);
    sl__resolver_start(uv_default_loop(), resolve_interval(g), names_changed);
}

/* Swap in a checked generation g built from file text; old is current. */
static int install(struct sl_gen *g, struct sl_gen *old)
{
    char why[512];

    if (g->conf->workers != n_workers && old != NULL && g->conf->workers != old->conf->workers)
        sl_log(SL_LOG_WARN, NULL, "workers: %u needs a restart; keeping %u", g->conf->workers,
               n_workers);
    if (sl__listeners_prepare(g, n_workers, why, sizeof(why)) != 0) {
        sl_log(SL_LOG_ERROR, NULL, "reload failed: %s; the running configuration keeps serving",
               why);
        sl__gen_unref(g);
        return -1;
    }
    apply_logs(g->conf);
    g->id = old->id + 1;
    sl__gen_publish(g);
    sl__workers_reload();
    follow(g);
    sl__admin_apply(uv_default_loop(), g->conf, reload, n_workers);
    return 0;
}

/* The addresses behind an upstream host name changed: rebuild the current
 * generation from the same text, with the new targets. */
static void names_changed(void)
{
    struct sl_gen *cur = atomic_load(&sl__gen_current), *g;
    char *report = NULL;
    int errors = 0;

    g = sl__gen_load_text(cur->file, cur->text, cur->text_len, n_workers, &report, &errors);
    free(report);
    if (g == NULL) {
        sl_log(SL_LOG_ERROR, NULL, "could not rebuild the configuration after a DNS change");
        return;
    }
    if (install(g, cur) == 0)
        sl_log(SL_LOG_INFO, NULL, "upstream addresses changed: generation %llu",
               (unsigned long long)g->id);
}

/*
 * Reload the file: 0 and the new generation, or -1 and the errors (heap,
 * the caller frees) while the running configuration keeps serving. SIGHUP
 * and the admin API's POST /reload both come here.
 */
static int reload(uint64_t *generation, char **errors_out)
{
    struct sl_gen *cur = atomic_load(&sl__gen_current), *g;
    char *report = NULL;
    int errors = 0;

    sl_log(SL_LOG_INFO, NULL, "reloading %s", conf_file);
    g = sl__gen_load(conf_file, n_workers, &report, &errors);
    if (g == NULL) {
        sl_log(SL_LOG_ERROR, NULL,
               "reload failed, %d error%s; the running configuration "
               "(generation %llu) keeps serving:",
               errors, errors == 1 ? "" : "s", (unsigned long long)cur->id);
        if (report != NULL)
            sl__log_text(report);
        sl__metrics_reload(false);
        *errors_out = report;
        return -1;
    }
    if (report != NULL)
        sl__log_text(report); /* warnings */
    free(report);
    if (install(g, cur) != 0) {
        sl__metrics_reload(false);
        *errors_out = sl__xstrdup("the new listeners could not be opened (see the error log)");
        return -1;
    }
    sl_log(SL_LOG_INFO, NULL, "configuration reloaded: generation %llu", (unsigned long long)g->id);
    sl__metrics_reload(true);
    *generation = g->id;
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    switch (signum) {
    case SIGHUP: {
        uint64_t gen;
        char *report = NULL;

        reload(&gen, &report);
        free(report);
        break;
    }
    case SIGUSR1:
        sl__log_reopen();
        sl__access_log_reopen();
        sl_log(SL_LOG_INFO, NULL, "log files reopened");
        break;
    default:
        sl_log(SL_LOG_INFO, NULL, "%s received: finishing requests in flight, then exiting",
               signum == SIGTERM ? "SIGTERM" : "SIGINT");
        uv_signal_stop(&sig_term);
        uv_signal_stop(&sig_int);
        uv_signal_stop(&sig_hup);
        uv_signal_stop(&sig_usr1);
        uv_stop(h->loop);
        break;
    }
}

static int run(void)
{
    struct sl_gen *g;
    char *report = NULL, why[512];
    uv_loop_t *loop = uv_default_loop();
    int errors = 0, rc;

    /* Signals first: from the moment a listener accepts, a SIGHUP or SIGTERM
     * must find its handler (it waits in the loop until the loop runs). */
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_hup);
    uv_signal_init(loop, &sig_usr1);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    uv_signal_start(&sig_usr1, on_signal, SIGUSR1);

    g = sl__gen_load(conf_file, 0, &report, &errors);
    print_report(stderr, report);
    free(report);
    if (g == NULL) {
        fprintf(stderr, "%s: %d error%s, not started\n", conf_file, errors, errors == 1 ? "" : "s");
        return 1;
    }
    if (apply_logs(g->conf) != 0)
        return 1;
    n_workers = g->n_workers;
    if (sl__listeners_prepare(g, n_workers, why, sizeof(why)) != 0) {
        sl_log(SL_LOG_ERROR, NULL, "%s", why);
        return 1;
    }
    g->id = 1;
    sl__gen_publish(g);
    sl__tls_tickets_start(loop);
    rc = sl__workers_start(n_workers);
    if (rc != 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot start workers: %s", uv_strerror(rc));
        return 1;
    }
    follow(g);
    if (sl__admin_apply(loop, g->conf, reload, n_workers) != 0)
        return 1;
    for (size_t i = 0; i < g->conf->n_listen; i++)
        sl_log(SL_LOG_INFO, NULL, "listening on %s", g->conf->listen[i].address);
    sl_log(SL_LOG_INFO, NULL, "sluice %s started: %u worker%s, generation 1", SL_VERSION, n_workers,
           n_workers == 1 ? "" : "s");
    uv_run(loop, UV_RUN_DEFAULT);
    sl__admin_stop();
    sl__health_stop();
    sl__resolver_stop();
    sl__tls_tickets_stop();
    sl__workers_stop();
    sl_log(SL_LOG_INFO, NULL, "stopped");
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)&sig_usr1, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    sl__gen_publish(NULL);
    return 0;
}

static int check(void)
{
    char *report = NULL;
    int errors = 0;
    struct sl_gen *g = sl__gen_load(conf_file, 0, &report, &errors);

    print_report(stderr, report);
    free(report);
    if (g == NULL) {
        fprintf(stderr, "%s: %d error%s\n", conf_file, errors, errors == 1 ? "" : "s");
        return 1;
    }
    printf("%s: configuration ok\n", conf_file);
    sl__gen_unref(g);
    return 0;
}

int main(int argc, char **argv)
{
    bool test = false;
    int opt;

    sl__plugins_init();
    sl__http_install();
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            conf_file = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'V':
            print_versions();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    return test ? check() : run();
}
