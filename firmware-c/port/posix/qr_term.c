/* A QR code on the terminal, from libqrencode. */
#include <qrencode.h>
#include <stdlib.h>

#include "config_server.h"

#define QUIET 2

static int dark(const QRcode *q, int x, int y) {
    if (x < 0 || y < 0 || x >= q->width || y >= q->width) return 0;
    return q->data[y * q->width + x] & 1;
}

int fwl_qr_print(FILE *out, const char *text) {
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    int x, y;
    if (q == NULL) return -1;
    /* Two module rows per text line; light modules are drawn so that the code reads as dark on
     * light on a terminal with a dark background. */
    for (y = -QUIET; y < q->width + QUIET; y += 2) {
        for (x = -QUIET; x < q->width + QUIET; x++) {
            int top = !dark(q, x, y), bottom = y + 1 < q->width + QUIET && !dark(q, x, y + 1);
            fputs(top && bottom ? "\xe2\x96\x88" : top ? "\xe2\x96\x80" : bottom ? "\xe2\x96\x84" : " ",
                  out);
        }
        fputc('\n', out);
    }
    fflush(out);
    QRcode_free(q);
    return 0;
}
