/*
 * Dropping root. The main thread binds every listener (and the admin one)
 * and reads every key file as root, then the whole process becomes user:
 * (setgroups to the user's groups, setgid, setuid; glibc applies them to
 * every thread), and checks that root cannot be had back. What needs root
 * later fails like any other error: a reload that must bind a port below
 * 1024 or read a key only root can read is refused, and the running
 * configuration keeps serving.
 */
#include "server/privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the gateway started with (user: and group: as written). */
static char *run_user, *run_group;

static int fail(char *why, size_t n, const char *what, const char *name)
{
    snprintf(why, n, "cannot run as %s: %s: %s", name, what, strerror(errno));
    return -1;
}

int sl__privileges_drop(const struct sl_config *c, char *why, size_t n)
{
    const struct passwd *pw = NULL;
    const struct group *gr = NULL;
    uid_t uid = geteuid();
    gid_t gid = getegid();

    free(run_user);
    free(run_group);
    run_user = c->user ? strdup(c->user) : NULL;
    run_group = c->group ? strdup(c->group) : NULL;
    if (c->user == NULL && c->group == NULL)
        return 0;
    if (c->user != NULL && (pw = getpwnam(c->user)) == NULL) {
        snprintf(why, n, "cannot run as %s: no such user on this system", c->user);
        return -1;
    }
    if (c->group != NULL && (gr = getgrnam(c->group)) == NULL) {
        snprintf(why, n, "cannot run with group %s: no such group on this system", c->group);
        return -1;
    }
    if (pw != NULL)
        uid = pw->pw_uid, gid = pw->pw_gid;
    if (gr != NULL)
        gid = gr->gr_gid;
    if (uid == geteuid() && gid == getegid() && (pw == NULL || geteuid() != 0))
        return 0;
    if (geteuid() != 0) {
        snprintf(why, n,
                 "user: %s and group: %s need the gateway started as root (it runs as uid %u)",
                 c->user ? c->user : "-", c->group ? c->group : "-", (unsigned)geteuid());
        return -1;
    }
    if (pw != NULL ? initgroups(pw->pw_name, gid) != 0 : setgroups(1, &gid) != 0)
        return fail(why, n, "setting the supplementary groups", c->user ? c->user : c->group);
    if (setgid(gid) != 0)
        return fail(why, n, "setgid", c->group ? c->group : c->user);
    if (pw != NULL && setuid(uid) != 0)
        return fail(why, n, "setuid", c->user);
    if (pw != NULL && uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(why, n, "running as %s, but root could be regained", c->user);
        return -1;
    }
    return 0;
}

static int differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

const char *sl__privileges_changed(const struct sl_config *next)
{
    if (differs(run_user, next->user) || differs(run_group, next->group))
        return "user: and group: take effect when the gateway starts; a reload keeps the "
               "running user and group";
    return NULL;
}
