/* fwl_unit_tests GROUP|all — the agent's unit tests (run under ASan + UBSan by CTest). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tests.h"

int t_passed, t_failed;

static const struct {
    const char *name;
    void (*fn)(void);
} GROUPS[] = {
    {"json", test_json},
    {"sha256", test_sha256},
    {"util", test_util},
    {"bundle", test_bundle},
    {"record", test_record},
    {"form", test_form},
    {"agent_install", test_agent_install},
    {"agent_refuse", test_agent_refuse},
    {"agent_image", test_agent_image},
    {"agent_resume", test_agent_resume},
    {"agent_rollback", test_agent_rollback},
    {"agent_power_cut", test_agent_power_cut},
    {"agent_storage", test_agent_storage},
    {"agent_serve", test_agent_serve},
};

int main(int argc, char **argv) {
    size_t i;
    int ran = 0;
    const char *want = argc > 1 ? argv[1] : "all";
    for (i = 0; i < sizeof GROUPS / sizeof GROUPS[0]; i++) {
        if (strcmp(want, "all") == 0 || strcmp(want, GROUPS[i].name) == 0) {
            GROUPS[i].fn();
            ran++;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "unknown group %s\n", want);
        return 2;
    }
    printf("%s: %d checks passed, %d failed\n", want, t_passed, t_failed);
    return t_failed == 0 ? 0 : 1;
}
