/*
 * api_key plugin: the table of key digests and the lines of a key file.
 * Pure functions, unit-tested in test_api_key.c.
 */
#include "api_key.h"

#include <ctype.h>
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
