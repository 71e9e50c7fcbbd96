/*
 * A log-linear histogram of nanosecond values, as HdrHistogram lays one
 * out: values below 2^HIST_SUB_BITS each have their own bucket, and every
 * power of two above is cut into 2^(HIST_SUB_BITS-1) equal buckets, so a
 * bucket's width is under 1/128 of its value (HIST_SUB_BITS 8: < 0.8%)
 * whatever the magnitude. Percentiles are the highest value of the bucket
 * they fall in, as HdrHistogram reports them; count, mean and max are exact.
 */
#ifndef PACED_HIST_H
#define PACED_HIST_H

#include <stdint.h>

enum {
    HIST_SUB_BITS = 8,
    HIST_BUCKETS = (64 - HIST_SUB_BITS + 2) << (HIST_SUB_BITS - 1),
};

struct hist {
    uint64_t n, max, sum_hi, sum; /* sum: of the values, in ns (sum_hi: overflows) */
    uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);

/* The value at percentile p (0 < p <= 100); 0 when the histogram is empty. */
uint64_t hist_pct(const struct hist *h, double p);

double hist_mean(const struct hist *h);

#endif
