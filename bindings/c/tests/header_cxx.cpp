// The header from C++17 (-Wall -Wextra -pedantic -Werror), and a few calls through it.
#include "fwledger.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

static_assert(sizeof(fwl_image_verifier) == FWL_IMAGE_VERIFIER_SIZE, "documented state size");
static_assert(alignof(fwl_image_verifier) == alignof(std::uint64_t), "state alignment");
static_assert(std::is_trivially_copyable<fwl_image_verifier>::value, "plain data");

int main() {
    int failed = 0, passed = 0;
    auto check = [&](bool ok, const char *what) {
        if (ok) {
            passed++;
        } else {
            failed++;
            std::fprintf(stderr, "C++ check failed: %s\n", what);
        }
    };
    check(std::string(fwl_status_str(FWL_OK)) == "success", "fwl_status_str(FWL_OK)");
    check(std::string(fwl_status_check(FWL_ERR_WRONG_MODEL)) == "model", "fwl_status_check");
    int order = 0;
    check(fwl_version_compare("1.2.0", "1.10.0", &order) == FWL_OK && order == -1, "compare");
    fwl_manifest *m = nullptr;
    const std::uint8_t garbage[4] = {0xd2, 0x84, 0x40, 0xa0};
    const std::uint8_t key[FWL_PUBLIC_KEY_LEN] = {};
    fwl_status s = fwl_manifest_verify(garbage, sizeof garbage, key, sizeof key, 0, 0, &m);
    check(s == FWL_ERR_INVALID_ARGUMENT || s == FWL_ERR_MALFORMED, "garbage refused");
    check(m == nullptr, "no handle on failure");
    char msg[256];
    check(fwl_last_error(msg, sizeof msg) == std::strlen(msg) && msg[0] != '\0', "last error");
    fwl_manifest_free(m);
    fwl_image_verifier v{};
    check(fwl_image_verifier_finish(&v) == FWL_ERR_INVALID_ARGUMENT, "uninitialised verifier");
    std::printf("cxx17: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
