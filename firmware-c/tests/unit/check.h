/* A tiny test harness: CHECK macros that count, one line per failure. */
#ifndef FWL_TEST_CHECK_H
#define FWL_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

extern int t_passed, t_failed;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (cond) {                                                                       \
            t_passed++;                                                                   \
        } else {                                                                          \
            t_failed++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_INT(got, want)                                                           \
    do {                                                                                  \
        long long t_g_ = (long long)(got), t_w_ = (long long)(want);                      \
        if (t_g_ == t_w_) {                                                               \
            t_passed++;                                                                   \
        } else {                                                                          \
            t_failed++;                                                                   \
            fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__, __LINE__, #got, \
                    t_g_, t_w_);                                                          \
        }                                                                                 \
    } while (0)

#define CHECK_STR(got, want)                                                              \
    do {                                                                                  \
        const char *t_g_ = (got), *t_w_ = (want);                                         \
        if (t_g_ != NULL && t_w_ != NULL && strcmp(t_g_, t_w_) == 0) {                    \
            t_passed++;                                                                   \
        } else {                                                                          \
            t_failed++;                                                                   \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__,  \
                    #got, t_g_ ? t_g_ : "(null)", t_w_ ? t_w_ : "(null)");                \
        }                                                                                 \
    } while (0)

/* `s` starts with `prefix`. */
#define CHECK_PREFIX(s, prefix)                                                           \
    do {                                                                                  \
        const char *t_s_ = (s), *t_p_ = (prefix);                                         \
        if (t_s_ != NULL && strncmp(t_s_, t_p_, strlen(t_p_)) == 0) {                     \
            t_passed++;                                                                   \
        } else {                                                                          \
            t_failed++;                                                                   \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected to start with \"%s\"\n",        \
                    __FILE__, __LINE__, #s, t_s_ ? t_s_ : "(null)", t_p_);                \
        }                                                                                 \
    } while (0)

#endif
