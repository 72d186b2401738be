/* A program built outside CMake with only `pkg-config --cflags --libs fwledger[-static]`. */
#include <stdio.h>
#include <string.h>

#include <fwledger.h>

int main(void) {
    int order = 0;
    if (fwl_version_compare("1.0.0", "1.0.1", &order) != FWL_OK || order != -1) return 1;
    if (strcmp(fwl_status_check(FWL_ERR_IMAGE_DIGEST_MISMATCH), "image-sha256") != 0) return 1;
    printf("fwledger %s linked through pkg-config\n", fwl_library_version());
    return 0;
}
