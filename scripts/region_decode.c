/* Region decoding of a baseline JPEG with libjpeg(-turbo): only the rows and columns a crop needs.
 *
 * Used by scripts/bench_decode.py to measure how much a decoder that skips what a crop leaves
 * out can save (the bound on "reduced-size decoding").  jpeg_skip_scanlines skips the rows above
 * the crop (entropy decoding still runs there: baseline JPEG cannot seek), decoding stops after
 * the crop's last row, and jpeg_crop_scanline limits IDCT, upsampling and colour conversion to
 * the crop's iMCU columns.  The region is widened by one pixel on the left and by 16 on the
 * right (clipped to the image) so that fancy chroma upsampling sees the same neighbours as in a
 * full decode: the pixels returned equal a full decode's.
 *
 *   cc -O2 -shared -fPIC -o region_decode.so region_decode.c -ljpeg
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

struct error_trap {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void trap_error(j_common_ptr cinfo) {
  struct error_trap *trap = (struct error_trap *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, trap->message);
  longjmp(trap->jump, 1);
}

/* Decode pixels [x0, x1) x [y0, y1) of the JPEG in buf[0:size] as RGB into out (row-major,
 * (y1 - y0) x (x1 - x0) x 3 bytes).  Returns 0, or -1 with a message (at most 200 bytes) in error. */
int region_decode(const unsigned char *buf, unsigned long size, int x0, int y0, int x1, int y1,
                  unsigned char *out, char *error) {
  struct jpeg_decompress_struct cinfo;
  struct error_trap trap;
  unsigned char *volatile row = NULL;
  cinfo.err = jpeg_std_error(&trap.pub);
  trap.pub.error_exit = trap_error;
  if (setjmp(trap.jump)) {
    snprintf(error, 200, "%s", trap.message);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, buf, size);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if (x0 < 0 || y0 < 0 || x1 <= x0 || y1 <= y0 || x1 > (int)cinfo.output_width || y1 > (int)cinfo.output_height) {
    snprintf(error, 200, "region (%d, %d, %d, %d) outside the %ux%u image", x0, y0, x1, y1,
             cinfo.output_width, cinfo.output_height);
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  JDIMENSION left = x0 > 0 ? x0 - 1 : 0;
  JDIMENSION right = x1 + 16 < (int)cinfo.output_width ? (JDIMENSION)(x1 + 16) : cinfo.output_width;
  JDIMENSION width = right - left;
  jpeg_crop_scanline(&cinfo, &left, &width); /* moves left to an iMCU boundary */
  row = malloc((size_t)width * 3);
  if (y0 > 0) jpeg_skip_scanlines(&cinfo, y0);
  size_t out_stride = (size_t)(x1 - x0) * 3;
  for (int y = y0; y < y1; y++) {
    JSAMPROW r = row;
    jpeg_read_scanlines(&cinfo, &r, 1);
    memcpy(out + (size_t)(y - y0) * out_stride, row + (size_t)(x0 - left) * 3, out_stride);
  }
  jpeg_abort_decompress(&cinfo); /* the rows below the crop are never entropy-decoded */
  jpeg_destroy_decompress(&cinfo);
  free(row);
  return 0;
}
