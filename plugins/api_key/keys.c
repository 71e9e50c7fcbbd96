/*
 * api_key plugin: the table of key digests, the reading of a key file and
 * its lines, and the count of a query parameter. Unit-tested in
 * test_api_key.c.
 */
#include "api_key.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

void sl__ak_digest(const char *key, size_t len, unsigned char out[AK_DIGEST])
{
    SHA256((const unsigned char *)key, len, out);
}

static size_t first_slot(const struct ak_table *t, const unsigned char digest[AK_DIGEST])
{
    uint64_t h;

    memcpy(&h, digest, sizeof(h));
    return (size_t)h & t->mask;
}

const char *sl__ak_find(const struct ak_table *t, const unsigned char digest[AK_DIGEST])
{
    if (t->slots == NULL)
        return NULL;
    /* The table is never more than half full: an empty slot ends the run. */
    for (size_t i = first_slot(t, digest);; i = (i + 1) & t->mask) {
        const struct ak_slot *s = &t->slots[i];

        if (s->consumer == NULL)
            return NULL;
        if (CRYPTO_memcmp(s->digest, digest, AK_DIGEST) == 0)
            return s->consumer;
    }
}

const char *sl__ak_put(struct ak_table *t, const unsigned char digest[AK_DIGEST],
                       const char *consumer)
{
    size_t i = first_slot(t, digest);

    for (; t->slots[i].consumer != NULL; i = (i + 1) & t->mask)
        if (memcmp(t->slots[i].digest, digest, AK_DIGEST) == 0)
            return t->slots[i].consumer;
    memcpy(t->slots[i].digest, digest, AK_DIGEST);
    t->slots[i].consumer = consumer;
    return NULL;
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    return s;
}

int sl__ak_parse_line(char *line, const char **consumer, const char **key, const char **why)
{
    char *s = trim(line), *colon;

    if (*s == '\0' || *s == '#')
        return 0;
    colon = strchr(s, ':');
    if (colon == NULL) {
        *why = "expected CONSUMER: KEY";
        return -1;
    }
    *colon = '\0';
    *consumer = trim(s);
    *key = trim(colon + 1);
    if ((*why = sl__ak_consumer_problem(*consumer)) != NULL ||
        (*why = sl__ak_key_problem(*key)) != NULL)
        return -1;
    return 1;
}

const char *sl__ak_consumer_problem(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > AK_MAX_CONSUMER)
        return "expected a consumer name of 1 to 128 characters";
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("._@+-", s[i]) == NULL)
            return "a consumer name is made of A-Z a-z 0-9 . _ @ + -";
    return NULL;
}

const char *sl__ak_key_problem(const char *s)
{
    size_t n = strlen(s);

    if (n < AK_MIN_KEY)
        return "an API key must be at least 16 characters long (use a random one)";
    if (n > AK_MAX_KEY)
        return "an API key must be at most 1024 characters long";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return "an API key is made of visible ASCII characters (no spaces)";
    return NULL;
}

int sl__ak_file_open(struct ak_file *kf, const char *path)
{
    kf->line = 0;
    kf->f = fopen(path, "re");
    if (kf->f == NULL)
        return -1;
    /* Before any read: the stream then never allocates a buffer of its own. */
    setvbuf(kf->f, kf->io, _IOFBF, sizeof(kf->io));
    return 0;
}

int sl__ak_file_next(struct ak_file *kf, const char **why)
{
    size_t n = 0;
    bool any = false, nul = false;
    int c;

    while ((c = getc(kf->f)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        nul |= c == '\0';
        if (n < AK_MAX_LINE)
            kf->buf[n] = (char)c;
        n++; /* past AK_MAX_LINE too: the line is skipped to its end */
    }
    if (ferror(kf->f))
        return -2;
    if (!any)
        return 0;
    kf->line++;
    kf->buf[n < AK_MAX_LINE ? n : AK_MAX_LINE] = '\0';
    if (n > AK_MAX_LINE) {
        *why = "a line is longer than 4096 bytes";
        return -1;
    }
    if (nul) {
        *why = "a line holds a NUL byte";
        return -1;
    }
    return 1;
}

void sl__ak_file_close(struct ak_file *kf)
{
    int saved = errno;

    fclose(kf->f);
    kf->f = NULL;
    OPENSSL_cleanse(kf->io, sizeof(kf->io));
    OPENSSL_cleanse(kf->buf, sizeof(kf->buf));
    errno = saved;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Whether the form-encoded name raw (len bytes) is want once decoded,
 * byte for byte as the core decodes it (an unfinished %X stays as it is). */
static bool param_is(const char *raw, size_t len, const char *want)
{
    size_t i = 0;

    for (; i < len; want++) {
        int c = (unsigned char)raw[i];

        if (c == '%' && i + 2 < len && hexval(raw[i + 1]) >= 0 && hexval(raw[i + 2]) >= 0) {
            c = hexval(raw[i + 1]) * 16 + hexval(raw[i + 2]);
            i += 3;
        } else {
            c = c == '+' ? ' ' : c;
            i++;
        }
        if (*want == '\0' || c != (unsigned char)*want)
            return false;
    }
    return *want == '\0';
}

unsigned sl__ak_query_count(struct sl_str q, const char *name)
{
    unsigned count = 0;
    size_t i = 0;

    while (i < q.len) {
        size_t start = i;
        const char *eq;

        while (i < q.len && q.p[i] != '&')
            i++;
        eq = memchr(q.p + start, '=', i - start);
        if (i > start && param_is(q.p + start, eq ? (size_t)(eq - q.p) - start : i - start, name))
            count++;
        i++; /* the '&' */
    }
    return count;
}
