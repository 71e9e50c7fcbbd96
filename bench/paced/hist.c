/*
 * The log-linear histogram of hist.h. Bucket i < 2^S holds the value i;
 * above, a value v whose top bit is bit t goes to e = t - (S - 1) and
 * m = v >> e (2^(S-1) <= m < 2^S), bucket (e << (S-1)) + m, so buckets
 * follow each other without a gap from one power of two to the next.
 */
#include "hist.h"

#include <stdint.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned e = 63 - __builtin_clzll(v) - (HIST_SUB_BITS - 1);
    return (e << (HIST_SUB_BITS - 1)) + (unsigned)(v >> e);
}

/* The highest value that falls in bucket i. */
static uint64_t bucket_top(unsigned i)
{
    if (i < (1u << HIST_SUB_BITS))
        return i;
    unsigned e = (i >> (HIST_SUB_BITS - 1)) - 1;
    uint64_t m = i - (e << (HIST_SUB_BITS - 1));
    return ((m + 1) << e) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
    if (h->sum + v < h->sum)
        h->sum_hi++;
    h->sum += v;
}

uint64_t hist_pct(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->n + 0.999999), seen = 0;
    if (want < 1)
        want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t top = bucket_top(i);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    if (h->n == 0)
        return 0;
    return ((double)h->sum_hi * 18446744073709551616.0 + (double)h->sum) / (double)h->n;
}
