/* The header alone, under the strictest C99 flags we hold it to (see CMakeLists.txt). */
#include "fwledger.h"

#include "fwledger.h" /* the include guard works */

typedef char fwl_check_verifier_size[sizeof(fwl_image_verifier) == FWL_IMAGE_VERIFIER_SIZE ? 1 : -1];

int fwl_header_c99_compiles(void);
int fwl_header_c99_compiles(void) {
    fwl_check_verifier_size ok;
    (void)ok;
    return (int)FWL_OK;
}
