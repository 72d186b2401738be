/* A tiny test harness: CHECK macros that count, and a closing "N passed, N failed" line. */
#ifndef FWLEDGER_TEST_HARNESS_H
#define FWLEDGER_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

#include "fwledger.h"

static int h_passed;
static int h_failed;

static void h_fail_note(void) {
    char msg[256];
    fwl_last_error(msg, sizeof msg);
    if (msg[0] != '\0') fprintf(stderr, "    last error: %s\n", msg);
}

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            h_passed++;                                                          \
        } else {                                                                 \
            h_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

/* Checks that `expr` returns `want`, naming both statuses when it does not. */
#define CHECK_STATUS(expr, want)                                                   \
    do {                                                                           \
        fwl_status h_got_ = (expr);                                                \
        fwl_status h_want_ = (want);                                               \
        if (h_got_ == h_want_) {                                                   \
            h_passed++;                                                            \
        } else {                                                                   \
            h_failed++;                                                            \
            fprintf(stderr, "%s:%d: %s\n    returned %d (%s), expected %d (%s)\n", \
                    __FILE__, __LINE__, #expr, (int)h_got_, fwl_status_str(h_got_), \
                    (int)h_want_, fwl_status_str(h_want_));                        \
            h_fail_note();                                                         \
        }                                                                          \
    } while (0)

#define CHECK_STR(got, want)                                                         \
    do {                                                                             \
        const char *h_g_ = (got), *h_w_ = (want);                                    \
        if (h_g_ != NULL && h_w_ != NULL && strcmp(h_g_, h_w_) == 0) {               \
            h_passed++;                                                              \
        } else {                                                                     \
            h_failed++;                                                              \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
                    #got, h_g_ ? h_g_ : "(null)", h_w_ ? h_w_ : "(null)");            \
        }                                                                            \
    } while (0)

/* Prints the closing line and returns the process exit code. */
static int h_finish(const char *group) {
    printf("%s: %d passed, %d failed\n", group, h_passed, h_failed);
    return h_failed == 0 ? 0 : 1;
}

#endif
