/*
 * sluice -t --diff: a small blocking HTTP client of the admin API. It
 * first checks that the instance refuses unknown query parameters (an
 * instance from before dry runs would take POST /reload?dry_run=1 for a
 * real reload), then sends the checked file's text for a dry run and
 * prints the changes the way people read them.
 */
#include "server/diff_cli.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/sbuf.h"
#include "config/diff.h"
#include "config/gen.h"
#include "upstream/resolve.h"

#define TIMEOUT_S  30
#define MAX_ANSWER (64u << 20)

struct target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[300]; /* as given, for messages */
    const char *token;
    char file_token[1024]; /* read from --token-file */
};

struct answer {
    int status;
    json_t *json; /* NULL when the body is not JSON */
};

static int parse_address(const char *s, struct target *t)
{
    char host[256];
    uint16_t port;
    const char *why;
    size_t n;
    bool is_name;

    if (sl__split_hostport(s, host, sizeof(host), &port, &why) != 0 ||
        (port == 0 && (why = "the port must be a number from 1 to 65535")) ||
        sl__resolve(host, port, false, false, &t->addr, 1, &n, &is_name, &why) != 0) {
        fprintf(stderr, "sluice: --admin %s: %s\n", s, why);
        return -1;
    }
    t->addrlen =
        t->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    snprintf(t->name, sizeof(t->name), "%s", s);
    return 0;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Send req then body, read the whole answer (the admin API closes after
 * one). 0, or -1 with errno set. */
static int exchange(const struct target *t, const struct sl_sbuf *req, const char *body,
                    size_t body_len, struct sl_sbuf *out)
{
    struct timeval tv = {.tv_sec = TIMEOUT_S};
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), saved;
    const char *parts[2] = {req->p, body};
    size_t lens[2] = {req->len, body_len};

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) != 0)
        goto fail;
    for (int i = 0; i < 2; i++) {
        for (size_t off = 0; off < lens[i];) {
            ssize_t w = send(fd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto fail;
            off += (size_t)w;
        }
    }
    for (;;) {
        ssize_t r;

        sl__sbuf_reserve(out, 65536);
        r = recv(fd, out->p + out->len, out->cap - out->len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        out->len += (size_t)r;
        if (out->len > MAX_ANSWER) {
            errno = EFBIG;
            goto fail;
        }
    }
    close(fd);
    return 0;

fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* One request to the admin API: 0 and *a, or -1 (reported). */
static int ask(const struct target *t, const char *line, const char *file, const char *body,
               size_t body_len, struct answer *a)
{
    struct sl_sbuf req = {0}, resp = {0};
    const char *head_end;
    int rc = -1;

    sl__sbuf_printf(&req, "%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", line, t->name);
    if (t->token != NULL && t->token[0])
        sl__sbuf_printf(&req, "Authorization: Bearer %s\r\n", t->token);
    if (file != NULL && printable(file) && strlen(file) < 1000)
        sl__sbuf_printf(&req, "X-Config-File: %s\r\n", file);
    if (body != NULL)
        sl__sbuf_printf(&req, "Content-Type: application/yaml\r\nContent-Length: %zu\r\n",
                        body_len);
    sl__sbuf_lit(&req, "\r\n");
    if (exchange(t, &req, body, body_len, &resp) != 0) {
        fprintf(stderr,
                "sluice: cannot reach the admin API at %s: %s (is the instance running, with "
                "admin: at that address? name it with --admin HOST:PORT)\n",
                t->name, strerror(errno));
        goto done;
    }
    sl__sbuf_add(&resp, "", 0);
    head_end = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
    if (head_end == NULL || sscanf(resp.p, "HTTP/1.%*d %d", &a->status) != 1) {
        fprintf(stderr, "sluice: %s did not answer as the admin API does\n", t->name);
        goto done;
    }
    a->json = json_loadb(head_end + 4, resp.len - (size_t)(head_end + 4 - resp.p), 0, NULL);
    rc = 0;
done:
    sl__sbuf_free(&req);
    sl__sbuf_free(&resp);
    return rc;
}

static const char *message(const struct answer *a)
{
    const char *m = json_string_value(json_object_get(a->json, "message"));

    return m ? m : "(no message)";
}

/* The answer to anything but a dry run's 200 or 400: exit 2, said why. */
static int refused(const struct target *t, const struct answer *a)
{
    if (a->status == 401)
        fprintf(stderr,
                "sluice: the admin API at %s refused the token (401): set admin.token in the "
                "file (\"${SLUICE_ADMIN_TOKEN}\"), or SLUICE_ADMIN_TOKEN in the environment, "
                "or give --token-file\n",
                t->name);
    else
        fprintf(stderr, "sluice: the admin API at %s answered %d: %s\n", t->name, a->status,
                message(a));
    return 2;
}

/* An instance from before dry runs ignores query parameters: it would
 * answer this with 200 (and take ?dry_run=1 for a real reload). */
static int supports_dry_runs(const struct target *t)
{
    struct answer a = {0};
    const char *err;
    int rc;

    if (ask(t, "GET /status?dry_run=1", NULL, NULL, 0, &a) != 0)
        return 2;
    err = json_string_value(json_object_get(a.json, "error"));
    if (a.status == 400 && err != NULL && strcmp(err, "unknown_parameter") == 0) {
        rc = 0;
    } else if (a.status == 200) {
        fprintf(stderr,
                "sluice: the instance at %s does not know dry runs (it ignores query "
                "parameters, so it would take POST /reload?dry_run=1 for a real reload): "
                "upgrade it first; nothing was sent\n",
                t->name);
        rc = 2;
    } else {
        rc = refused(t, &a);
    }
    json_decref(a.json);
    return rc;
}

/* Print the changes of a dry run's answer, one line each, then a summary. */
static int print_changes(const struct target *t, const json_t *j)
{
    const json_t *changes = json_object_get(j, "changes"), *ch;
    struct sl_arena arena;
    struct sl_diff d;
    struct sl_sbuf out = {0};
    size_t i;

    if (!json_is_array(changes)) {
        fprintf(stderr, "sluice: %s answered the dry run without a list of changes\n", t->name);
        return 2;
    }
    sl_arena_init(&arena, 4096, 0);
    sl__diff_init(&d, &arena);
    json_array_foreach(changes, i, ch)
    {
        const char *kind = json_string_value(json_object_get(ch, "kind"));
        const char *name = json_string_value(json_object_get(ch, "name"));
        int op = sl__diff_op_parse(json_string_value(json_object_get(ch, "change")) ?: "");
        const json_t *details = json_object_get(ch, "details"), *det;
        struct sl_diff_change *c;
        size_t k;

        if (kind == NULL || name == NULL || op < 0)
            continue;
        c = sl__diff_begin(&d, sl_arena_strndup(&arena, kind, strlen(kind)),
                           sl_arena_strndup(&arena, name, strlen(name)), (enum sl_diff_op)op);
        json_array_foreach(details, k, det) if (json_is_string(det))
            sl__diff_detail(&d, c, "%s", json_string_value(det));
        sl__diff_end(&d, c);
    }
    sl__diff_text(&d, &out);
    fwrite(out.p ? out.p : "", 1, out.len, stdout);
    if (d.n == 0)
        printf("no changes against generation %lld at %s\n",
               (long long)json_integer_value(json_object_get(j, "generation")), t->name);
    else
        printf("%zu change%s against generation %lld at %s (nothing applied)\n", d.n,
               d.n == 1 ? "" : "s", (long long)json_integer_value(json_object_get(j, "generation")),
               t->name);
    sl__sbuf_free(&out);
    sl_arena_destroy(&arena);
    return 0;
}

/* The dry run itself: exit status. */
static int dry_run(const struct target *t, const char *file, const struct sl_gen *g)
{
    struct answer a = {0};
    int rc;

    if (ask(t, "POST /reload?dry_run=1", file, g->text, g->text_len, &a) != 0)
        return 2;
    if (a.status == 200) {
        rc = print_changes(t, a.json);
    } else if (a.status == 400 && strcmp(json_string_value(json_object_get(a.json, "error")) ?: "",
                                         "invalid_config") == 0) {
        /* Valid here, not there: another environment, files it cannot read. */
        fputs(message(&a), stderr);
        fprintf(stderr, "%s: %lld error%s as the instance at %s reads it\n", file,
                (long long)json_integer_value(json_object_get(a.json, "errors")),
                json_integer_value(json_object_get(a.json, "errors")) == 1 ? "" : "s", t->name);
        rc = 1;
    } else {
        rc = refused(t, &a);
    }
    json_decref(a.json);
    return rc;
}

/* The token in the first line of path (--token-file: unlike --token, not
 * in the process list) into t->file_token. 0, or -1 (reported). */
static int read_token_file(const char *path, struct target *t)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "sluice: --token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fgets(t->file_token, sizeof(t->file_token), f) ? strlen(t->file_token) : 0;
    fclose(f);
    while (n > 0 && (t->file_token[n - 1] == '\n' || t->file_token[n - 1] == '\r' ||
                     t->file_token[n - 1] == ' ' || t->file_token[n - 1] == '\t'))
        t->file_token[--n] = '\0';
    if (n == 0 || n == sizeof(t->file_token) - 1) {
        fprintf(stderr, "sluice: --token-file %s: %s\n", path,
                n ? "the token is longer than 1000 characters" : "no token on its first line");
        return -1;
    }
    t->token = t->file_token;
    return 0;
}

/* The bearer token: --token, --token-file, the file's admin.token, or the
 * environment's SLUICE_ADMIN_TOKEN. 0, or -1 (reported). */
static int pick_token(struct target *t, const char *token, const char *token_file,
                      const struct sl_gen *g)
{
    const char *env = getenv("SLUICE_ADMIN_TOKEN");

    if (token != NULL)
        t->token = token;
    else if (token_file != NULL && read_token_file(token_file, t) != 0)
        return -1;
    else if (token_file == NULL)
        t->token = g->conf->admin_token && g->conf->admin_token[0] ? g->conf->admin_token
                   : env && env[0]                                 ? env
                                                                   : NULL;
    if (t->token != NULL && !printable(t->token)) {
        fprintf(stderr, "sluice: the admin token has control characters\n");
        return -1;
    }
    return 0;
}

int sl__diff_cli(struct sl_gen *g, const char *file, const char *admin, const char *token,
                 const char *token_file)
{
    struct target t = {0};
    int rc;

    if (admin != NULL) {
        rc = parse_address(admin, &t) == 0 ? 0 : 2;
    } else if (g->conf->admin_address != NULL) {
        t.addr = g->conf->admin_addr;
        t.addrlen = g->conf->admin_addrlen;
        snprintf(t.name, sizeof(t.name), "%s", g->conf->admin_address);
        rc = 0;
    } else {
        fprintf(stderr,
                "sluice: %s has no admin: section: name the running instance's admin API with "
                "--admin HOST:PORT\n",
                file);
        rc = 2;
    }
    if (rc == 0 && pick_token(&t, token, token_file, g) != 0)
        rc = 2;
    if (rc == 0)
        rc = supports_dry_runs(&t);
    if (rc == 0)
        rc = dry_run(&t, file, g);
    fflush(stdout);
    OPENSSL_cleanse(t.file_token, sizeof(t.file_token));
    sl__gen_unref(g);
    return rc;
}
