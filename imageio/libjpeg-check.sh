#!/bin/sh
# Exits 0 when this machine can build imageio with the libjpeg tag: a C
# compiler and libjpeg-turbo 1.5 or later with its headers and static
# library (Debian: apt-get install gcc libjpeg62-turbo-dev), whose scaled
# and cropped decoding (jpeg_crop_scanline, jpeg_skip_scanlines) the tag
# uses, linked into the binary. setup.sh, test.sh and .ci/run ask it.
# cgo's compiler: $CC, else gcc.
cc=${CC:-gcc}
command -v "$cc" >/dev/null 2>&1 || exit 1
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
printf '%s\n' '#include <stdio.h>' '#include <jpeglib.h>' \
  'int main(void) { struct jpeg_decompress_struct c; JDIMENSION x = 0, w = 1;' \
  '  if (0) { jpeg_crop_scanline(&c, &x, &w); jpeg_skip_scanlines(&c, 1); }' \
  '  return jpeg_std_error == 0; }' |
  "$cc" -x c - -Wl,-Bstatic -ljpeg -Wl,-Bdynamic -o "$out" >/dev/null 2>&1
