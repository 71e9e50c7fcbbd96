/*
 * sluice - the command line, signals and reloads.
 *
 *   sluice [-c FILE]        run
 *   sluice -t [-c FILE]     check the config and exit
 *   sluice -t --diff [-c FILE] [--admin HOST:PORT] [--token TOKEN | --token-file F]
 *                           ... and show what a reload of it would change
 *                           in the running instance (diff_cli.c)
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
#include <unistd.h>
#include <uv.h>
#include <yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "http/access_log.h"
#include "server/admin.h"
#include "server/diff_cli.h"
#include "config/gen.h"
#include "server/health.h"
#include "server/notify.h"
#include "server/privileges.h"
#include "server/reload.h"
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
/* A stop began: a second SIGTERM or SIGINT ends its grace at once; SIGHUP
 * is ignored (the handlers stay installed so that neither kills the process
 * with the default action while requests finish). */
static bool stopping;
static uv_async_t workers_done; /* the last worker's loop ended */

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice [-c FILE] [-t [--diff [--admin HOST:PORT] [--token-file FILE]]] "
               "[-V]\n"
               "  -c FILE  configuration file (default " DEFAULT_CONF ")\n"
               "  -t       check the configuration and exit\n"
               "  --diff   with -t: also show what a reload of FILE would change in the\n"
               "           running instance (asked of its admin API; nothing is applied)\n"
               "  --admin HOST:PORT, --token-file FILE (or --token TOKEN, which other\n"
               "           users see in the process list)\n"
               "           the running instance's admin API and its token (default:\n"
               "           FILE's admin:, then $SLUICE_ADMIN_TOKEN)\n"
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

static void on_signal(uv_signal_t *h, int signum)
{
    switch (signum) {
    case SIGHUP: {
        uint64_t gen;
        char *report = NULL;

        if (stopping) {
            sl_log(SL_LOG_WARN, NULL, "SIGHUP ignored: stopping");
            break;
        }
        sl__reload(&gen, &report);
        free(report);
        break;
    }
    case SIGUSR1:
        sl__log_reopen();
        sl__access_log_reopen();
        sl_log(SL_LOG_INFO, NULL, "log files reopened");
        break;
    default:
        if (stopping) {
            sl_log(SL_LOG_WARN, NULL, "%s received again: closing every connection now",
                   signum == SIGTERM ? "SIGTERM" : "SIGINT");
            sl__workers_stop_now();
            break;
        }
        stopping = true;
        sl_log(SL_LOG_INFO, NULL,
               "%s received: finishing requests in flight, then exiting (send it again to "
               "stop at once)",
               signum == SIGTERM ? "SIGTERM" : "SIGINT");
        sl__notify_stopping("stopping: finishing requests in flight");
        uv_stop(h->loop);
        break;
    }
}

static void on_workers_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

/*
 * path as an absolute path: the working directory's, then path's segments
 * less empty and "." ones; ".." and symlinks are kept, so a reload reads
 * whatever the name points to then. /status reports it, and a reload finds
 * the file whatever the working directory is by then. The result lives as
 * long as the process.
 */
static const char *absolute(const char *path)
{
    char cwd[4096];
    char *out, *o;

    if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
        return path;
    out = sl__xmalloc(strlen(cwd) + strlen(path) + 2);
    o = stpcpy(out, strcmp(cwd, "/") == 0 ? "" : cwd);
    while (*path != '\0') {
        size_t n = strcspn(path, "/");

        if (n > 0 && !(n == 1 && path[0] == '.')) {
            *o++ = '/';
            memcpy(o, path, n);
            o += n;
        }
        path += n + (path[n] == '/');
    }
    if (o == out)
        *o++ = '/';
    *o = '\0';
    return out;
}

static int run(void)
{
    struct sl_gen *g;
    char *report = NULL, why[512];
    uv_loop_t *loop = uv_default_loop();
    int errors = 0, rc, exit_code = 0;

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

    conf_file = absolute(conf_file);
    g = sl__gen_load(conf_file, 0, &report, &errors);
    print_report(stderr, report);
    free(report);
    if (g == NULL) {
        fprintf(stderr, "%s: %d error%s, not started\n", conf_file, errors, errors == 1 ? "" : "s");
        return 1;
    }
    if (sl__reload_apply_logs(g->conf) != 0)
        return 1;
    n_workers = g->n_workers;
    sl__reload_init(conf_file, n_workers);
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
    sl__reload_follow(g);
    if (sl__admin_apply(loop, g->conf, sl__reload, n_workers) != 0)
        return 1;
    /* Everything that needs root is open: the listeners, the admin one,
     * the logs, the key files; and the service manager's socket. */
    sl__notify_open();
    if (sl__privileges_drop(g->conf, why, sizeof(why)) != 0) {
        sl_log(SL_LOG_ERROR, NULL, "%s; not started", why);
        exit_code = 1;
    } else {
        for (size_t i = 0; i < g->conf->n_listen; i++)
            sl_log(SL_LOG_INFO, NULL, "listening on %s", g->conf->listen[i].address);
        sl_log(SL_LOG_INFO, NULL, "sluice %s started: %u worker%s, generation 1%s%s", SL_VERSION,
               n_workers, n_workers == 1 ? "" : "s", g->conf->user ? ", as " : "",
               g->conf->user ? g->conf->user : "");
        sl__notify_ready("serving generation 1");
        uv_run(loop, UV_RUN_DEFAULT);
    }
    sl__admin_stop();
    sl__health_stop();
    sl__resolver_stop();
    sl__tls_tickets_stop();
    /* The grace: the loop runs on for the signals only (a second stop
     * signal ends it at once), until the last worker is done. */
    stopping = true;
    uv_async_init(loop, &workers_done, on_workers_done);
    sl__workers_stop_begin(&workers_done);
    uv_run(loop, UV_RUN_DEFAULT);
    sl__workers_stop();
    sl__access_log_close(); /* the lines the workers queued, within a second */
    sl_log(SL_LOG_INFO, NULL, "stopped");
    sl__notify_close();
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)&sig_usr1, NULL);
    uv_close((uv_handle_t *)&workers_done, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    sl__gen_publish(NULL);
    sl__arena_thread_done();
    return exit_code;
}

/* sluice -t: load the file, its report on stderr, then "FILE: configuration
 * ok" on stdout (the generation returned) or the count of errors (NULL). */
static struct sl_gen *checked(void)
{
    char *report = NULL;
    int errors = 0;
    struct sl_gen *g = sl__gen_load(conf_file, 0, &report, &errors);

    print_report(stderr, report);
    free(report);
    if (g == NULL) {
        fprintf(stderr, "%s: %d error%s\n", conf_file, errors, errors == 1 ? "" : "s");
        return NULL;
    }
    printf("%s: configuration ok\n", conf_file);
    fflush(stdout);
    return g;
}

static int check(void)
{
    struct sl_gen *g = checked();

    if (g == NULL)
        return 1;
    sl__gen_unref(g);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"diff", no_argument, NULL, 'D'},
                                             {"admin", required_argument, NULL, 'A'},
                                             {"token", required_argument, NULL, 'T'},
                                             {"token-file", required_argument, NULL, 'F'},
                                             {NULL, 0, NULL, 0}};
    bool test = false, diff = false;
    const char *admin_addr = NULL, *admin_token = NULL, *token_file = NULL;
    int opt;

    sl__plugins_init();
    sl__http_install();
    while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'D':
            diff = true;
            break;
        case 'A':
            admin_addr = optarg;
            break;
        case 'T':
            admin_token = optarg;
            break;
        case 'F':
            token_file = optarg;
            break;
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
    if (optind < argc || (diff && !test) || ((admin_addr || admin_token || token_file) && !diff) ||
        (admin_token && token_file)) {
        if (diff && !test)
            fprintf(stderr, "sluice: --diff goes with -t: sluice -t --diff -c FILE\n");
        else if ((admin_addr || admin_token || token_file) && !diff)
            fprintf(stderr, "sluice: --admin, --token and --token-file go with -t --diff\n");
        else if (admin_token && token_file)
            fprintf(stderr, "sluice: give --token or --token-file, not both\n");
        usage(stderr);
        return 2;
    }
    if (diff) {
        struct sl_gen *g = checked();

        return g != NULL ? sl__diff_cli(g, conf_file, admin_addr, admin_token, token_file) : 1;
    }
    return test ? check() : run();
}
