/*
 * Durations, sizes and rates as written in the YAML file.
 */
#include "base/units.h"

#include <stdbool.h>
#include <string.h>

/* Read a decimal number at s[*i]; refuses overflow. */
static int number(const char *s, size_t len, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;

    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        unsigned d = (unsigned)(s[*i] - '0');

        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        (*i)++;
    }
    if (*i == start)
        return -1;
    *out = v;
    return 0;
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

int sl__parse_duration(const char *s, size_t len, uint64_t *ms)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    uint64_t total = 0, v, part;
    size_t i = 0;

    if (len == 1 && s[0] == '0') {
        *ms = 0;
        return 0;
    }
    if (len == 0)
        return -1;
    while (i < len) {
        size_t u, ulen = 0, best = SIZE_MAX;

        if (number(s, len, &i, &v) != 0)
            return -1;
        /* Longest unit that matches, so "ms" is not read as "m" then "s". */
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t n = strlen(units[u].name);

            if (n <= len - i && memcmp(s + i, units[u].name, n) == 0 && n > ulen) {
                ulen = n;
                best = u;
            }
        }
        if (best == SIZE_MAX)
            return -1;
        i += ulen;
        if (!mul_ok(v, units[best].ms, &part) || __builtin_add_overflow(total, part, &total))
            return -1;
    }
    *ms = total;
    return 0;
}

int sl__parse_size(const char *s, size_t len, uint64_t *bytes)
{
    uint64_t v, mult = 1;
    size_t i = 0;

    if (number(s, len, &i, &v) != 0)
        return -1;
    if (i < len) {
        switch (s[i]) {
        case 'k':
        case 'K':
            mult = 1ull << 10;
            break;
        case 'm':
        case 'M':
            mult = 1ull << 20;
            break;
        case 'g':
        case 'G':
            mult = 1ull << 30;
            break;
        case 'b':
        case 'B':
            break;
        default:
            return -1;
        }
        if (mult != 1) {
            i++;
            if (i < len && (s[i] == 'i' || s[i] == 'I'))
                i++;
        }
        if (i < len && (s[i] == 'b' || s[i] == 'B'))
            i++;
    }
    if (i != len || !mul_ok(v, mult, bytes))
        return -1;
    return 0;
}

int sl__parse_rate(const char *s, size_t len, uint64_t *count, uint64_t *period_ms)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } periods[] = {
        {"s", 1000},       {"sec", 1000},  {"second", 1000},  {"m", 60000},    {"min", 60000},
        {"minute", 60000}, {"h", 3600000}, {"hour", 3600000}, {"d", 86400000}, {"day", 86400000},
    };
    uint64_t n;
    size_t i = 0, p;

    if (number(s, len, &i, &n) != 0 || n == 0 || n > SL_RATE_MAX)
        return -1;
    while (i < len && s[i] == ' ')
        i++;
    if (i >= len || s[i] != '/')
        return -1;
    i++;
    while (i < len && s[i] == ' ')
        i++;
    for (p = 0; p < sizeof(periods) / sizeof(periods[0]); p++) {
        if (strlen(periods[p].name) == len - i && memcmp(s + i, periods[p].name, len - i) == 0) {
            *count = n;
            *period_ms = periods[p].ms;
            return 0;
        }
    }
    return -1;
}

int sl__parse_key(const char *s, unsigned allowed, struct sl_key *out)
{
    static const struct {
        const char *text;
        enum sl_key_source source;
        bool named;
    } kinds[] = {
        {"ip", SL_KEY_IP, false},         {"route", SL_KEY_ROUTE, false},
        {"header:", SL_KEY_HEADER, true}, {"cookie:", SL_KEY_COOKIE, true},
        {"jwt:", SL_KEY_JWT, true},       {"consumer", SL_KEY_VAR, false},
        {"var:", SL_KEY_VAR, true},
    };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].text);

        if (!(allowed & (1u << kinds[i].source)))
            continue;
        if (kinds[i].named ? strncmp(s, kinds[i].text, n) != 0 || s[n] == '\0'
                           : strcmp(s, kinds[i].text) != 0)
            continue;
        *out = (struct sl_key){kinds[i].source, kinds[i].named ? s + n : NULL, s};
        if (kinds[i].source == SL_KEY_VAR && !kinds[i].named)
            out->name = s; /* "consumer" is the variable of that name */
        return 0;
    }
    return -1;
}
