/*
 * A very small test harness for the unit tests: no external library.
 *
 * Each test is a void function whose name reads as a sentence; main() runs
 * them with RUN() and returns check_done(). A failed check prints where it
 * is, the expression and the values involved, counts the failure and carries
 * on, so one run shows every failing check.
 */
#ifndef SL_TEST_CHECK_H
#define SL_TEST_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int check_count;    /* checks evaluated */
static int check_failures; /* checks that failed */
static const char *check_test = "?";

static inline void check_fail_head(const char *file, int line)
{
    check_failures++;
    fprintf(stderr, "%s:%d: FAIL in %s: ", file, line, check_test);
}

static inline bool check_true(bool ok, const char *expr, const char *file, int line)
{
    check_count++;
    if (!ok) {
        check_fail_head(file, line);
        fprintf(stderr, "CHECK(%s)\n", expr);
    }
    return ok;
}

static inline bool check_eq_int(intmax_t a, intmax_t b, const char *ea, const char *eb,
                                const char *file, int line)
{
    check_count++;
    if (a != b) {
        check_fail_head(file, line);
        fprintf(stderr, "%s == %s: %" PRIdMAX " != %" PRIdMAX "\n", ea, eb, a, b);
        return false;
    }
    return true;
}

static inline bool check_eq_uint(uintmax_t a, uintmax_t b, const char *ea, const char *eb,
                                 const char *file, int line)
{
    check_count++;
    if (a != b) {
        check_fail_head(file, line);
        fprintf(stderr, "%s == %s: %" PRIuMAX " != %" PRIuMAX "\n", ea, eb, a, b);
        return false;
    }
    return true;
}

static inline bool check_streq(const char *a, const char *b, const char *ea, const char *eb,
                               const char *file, int line)
{
    check_count++;
    if (a == NULL || b == NULL ? a != b : strcmp(a, b) != 0) {
        check_fail_head(file, line);
        fprintf(stderr, "%s == %s: \"%s\" != \"%s\"\n", ea, eb, a ? a : "(null)", b ? b : "(null)");
        return false;
    }
    return true;
}

static inline bool check_contains(const char *hay, const char *needle, const char *eh,
                                  const char *file, int line)
{
    check_count++;
    if (hay == NULL || strstr(hay, needle) == NULL) {
        check_fail_head(file, line);
        fprintf(stderr, "%s does not contain \"%s\"; it is:\n%s\n", eh, needle,
                hay ? hay : "(null)");
        return false;
    }
    return true;
}

#define CHECK(cond)        check_true(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ_INT(a, b) check_eq_int((intmax_t)(a), (intmax_t)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_EQ_UINT(a, b)                                                                        \
    check_eq_uint((uintmax_t)(a), (uintmax_t)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_STREQ(a, b)    check_streq((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_CONTAINS(s, n) check_contains((s), (n), #s, __FILE__, __LINE__)

/* Run one test function, naming it in failure messages. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int before_ = check_failures;                                                              \
        check_test = #fn;                                                                          \
        fn();                                                                                      \
        printf("%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #fn);                       \
    } while (0)

/* Print the totals; the exit status of the test program. */
static inline int check_done(void)
{
    printf("%d checks, %d failed\n", check_count, check_failures);
    fflush(stdout);
    return check_failures != 0;
}

#endif
