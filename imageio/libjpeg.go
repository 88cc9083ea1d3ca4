//go:build libjpeg && cgo

package imageio

/*
#cgo LDFLAGS: -Wl,-Bstatic -ljpeg -Wl,-Bdynamic
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

// agErr is libjpeg's error manager with a way back: libjpeg's error_exit
// must not return, so it jumps to the setjmp in agDecode.
struct agErr {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int warned;
	char msg[JMSG_LENGTH_MAX];
};

static void agErrorExit(j_common_ptr c) {
	struct agErr *e = (struct agErr *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jump, 1);
}

// agEmit records the first warning (corrupt or truncated data, which
// libjpeg decodes past by inventing pixels) and ignores trace messages.
static void agEmit(j_common_ptr c, int level) {
	struct agErr *e = (struct agErr *)c->err;
	if (level < 0 && !e->warned) {
		e->warned = 1;
		(*c->err->format_message)(c, e->msg);
	}
}

// agInit zeroes a decompressor and its error manager and connects them
// (the caller then sets its setjmp before any libjpeg call that can fail).
static void agInit(struct jpeg_decompress_struct *c, struct agErr *e) {
	memset(c, 0, sizeof *c);
	memset(e, 0, sizeof *e);
	c->err = jpeg_std_error(&e->pub);
	e->pub.error_exit = agErrorExit;
	e->pub.emit_message = agEmit;
}

// agDecode decodes the JPEG buf[0:n] at scale 1/denom (denom 1, 2, 4 or 8)
// as RGBA, the rows [y, y+h) and (at least) the columns [*x, *x+*w) of the
// scaled image, into out (rows of stride bytes). libjpeg-turbo widens the
// columns to whole iMCUs: *x and *w return the columns decoded. With whole
// set, the decoder reads the file to its end (so that damaged data
// anywhere is reported); otherwise it stops after row y+h. Returns 0, or 1
// with msg set on an error, or 2 with msg set when libjpeg warned (the
// pixels are then partly invented), or 3 for a colour space libjpeg-turbo
// cannot turn into RGB (CMYK, YCCK).
static int agDecode(const unsigned char *buf, unsigned long n, int denom,
		int *x, int *w, int y, int h, int whole,
		unsigned char *out, int stride, char *msg) {
	int cols = stride / 4;
	struct jpeg_decompress_struct c;
	struct agErr e;
	agInit(&c, &e);
	if (setjmp(e.jump)) {
		jpeg_destroy_decompress(&c);
		strncpy(msg, e.msg, JMSG_LENGTH_MAX - 1);
		return 1;
	}
	jpeg_create_decompress(&c);
	jpeg_mem_src(&c, buf, n);
	jpeg_read_header(&c, TRUE);
	if (c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK) {
		jpeg_destroy_decompress(&c);
		return 3;
	}
	c.scale_num = 1;
	c.scale_denom = denom;
	c.out_color_space = JCS_EXT_RGBA;
	jpeg_start_decompress(&c);
	if (y < 0 || h <= 0 || y + h > (int)c.output_height || *x < 0 || *w <= 0 || *x + *w > (int)c.output_width) {
		jpeg_destroy_decompress(&c);
		snprintf(msg, JMSG_LENGTH_MAX, "region outside the %dx%d scaled image", c.output_width, c.output_height);
		return 1;
	}
	JDIMENSION cx = *x, cw = *w;
	if (cw < c.output_width) {
		jpeg_crop_scanline(&c, &cx, &cw);
	}
	*x = cx;
	*w = cw;
	if ((int)cw > cols) {
		jpeg_destroy_decompress(&c);
		snprintf(msg, JMSG_LENGTH_MAX, "cropped row of %d pixels exceeds the buffer's %d", (int)cw, cols);
		return 1;
	}
	if (y > 0) {
		jpeg_skip_scanlines(&c, y);
	}
	for (int r = 0; r < h; r++) {
		JSAMPROW row = out + (size_t)r * stride;
		if (jpeg_read_scanlines(&c, &row, 1) != 1) {
			jpeg_destroy_decompress(&c);
			snprintf(msg, JMSG_LENGTH_MAX, "decoder stopped at row %d", y + r);
			return 1;
		}
	}
	if (whole) {
		if (c.output_scanline < c.output_height) {
			jpeg_skip_scanlines(&c, c.output_height - c.output_scanline);
		}
		jpeg_finish_decompress(&c);
	}
	jpeg_destroy_decompress(&c);
	if (e.warned) {
		strncpy(msg, e.msg, JMSG_LENGTH_MAX - 1);
		return 2;
	}
	return 0;
}
// agVersion is libjpeg-turbo's version, from the headers built against.
#define AG_STR2(x) #x
#define AG_STR(x) AG_STR2(x)
static const char *agVersion(void) {
#ifdef LIBJPEG_TURBO_VERSION
	return AG_STR(LIBJPEG_TURBO_VERSION);
#else
	return "unknown";
#endif
}

// agProgressive reads the header of the JPEG buf[0:n]: 1 when it has
// several scans (progressive), 0 when one, -1 when the header cannot be
// read.
static int agProgressive(const unsigned char *buf, unsigned long n) {
	struct jpeg_decompress_struct c;
	struct agErr e;
	agInit(&c, &e);
	if (setjmp(e.jump)) {
		jpeg_destroy_decompress(&c);
		return -1;
	}
	jpeg_create_decompress(&c);
	jpeg_mem_src(&c, buf, n);
	jpeg_read_header(&c, TRUE);
	int p = jpeg_has_multiple_scans(&c) ? 1 : 0;
	jpeg_destroy_decompress(&c);
	return p;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

// ScaledJPEG tells that this build decodes JPEGs of more than
// LargeJPEGPixels with libjpeg-turbo, scaling while decoding (build tag
// libjpeg, cgo, the system's libjpeg62-turbo).
const ScaledJPEG = true

// JPEGDecoder names the JPEG decoder of this build for a version line:
// "libjpeg-turbo 2.1.5 (linked in) for JPEGs over 2 MP, image/jpeg below".
var JPEGDecoder = "libjpeg-turbo " + C.GoString(C.agVersion()) + " (linked in) for JPEGs over 2 MP, image/jpeg below"

// errLibjpegWarned: libjpeg-turbo decoded the file but warned about
// damaged or truncated data; Go's own decoder then decides.
var errLibjpegWarned = errors.New("libjpeg warned")

// errLibjpegColor: a colour space libjpeg-turbo does not convert to RGB.
var errLibjpegColor = errors.New("libjpeg: CMYK or YCCK")

// libjpegDecode decodes the columns [r.Min.X, r.Max.X) and rows [r.Min.Y,
// r.Max.Y) of JPEG b decoded at scale 1/denom, r in the scaled image's
// pixels (at most ⌈width/denom⌉ × ⌈height/denom⌉). The result's Rect is r
// (an *image.RGBA, opaque). With whole set the whole file is read, so
// damage anywhere in it is reported (errLibjpegWarned); otherwise decoding
// stops after the region's last row.
func libjpegDecode(b []byte, denom int, r image.Rectangle, whole bool) (*image.RGBA, error) {
	if len(b) == 0 || r.Empty() {
		return nil, errors.New("libjpeg: empty input or region")
	}
	// libjpeg-turbo moves x left to an iMCU boundary and widens w by as
	// much: by less than one iMCU, at most 32 pixels (4× horizontal
	// sampling of 8-pixel blocks), so 32 columns of slack suffice (and C
	// checks).
	x, w := C.int(r.Min.X), C.int(r.Dx())
	stride := 4 * (r.Dx() + 32)
	buf := make([]byte, stride*r.Dy())
	var msg [C.JMSG_LENGTH_MAX]C.char
	wholeFlag := C.int(0)
	if whole {
		wholeFlag = 1
	}
	rc := C.agDecode((*C.uchar)(unsafe.Pointer(&b[0])), C.ulong(len(b)), C.int(denom),
		&x, &w, C.int(r.Min.Y), C.int(r.Dy()), wholeFlag,
		(*C.uchar)(unsafe.Pointer(&buf[0])), C.int(stride), &msg[0])
	switch rc {
	case 0:
	case 2:
		return nil, fmt.Errorf("%w: %s", errLibjpegWarned, C.GoString(&msg[0]))
	case 3:
		return nil, errLibjpegColor
	default:
		return nil, fmt.Errorf("libjpeg: %s", C.GoString(&msg[0]))
	}
	if int(x) > r.Min.X || int(x)+int(w) < r.Max.X {
		return nil, fmt.Errorf("libjpeg: decoded columns [%d, %d) do not cover [%d, %d)", x, x+w, r.Min.X, r.Max.X)
	}
	m := &image.RGBA{Pix: buf, Stride: stride, Rect: image.Rect(int(x), r.Min.Y, int(x+w), r.Max.Y)}
	return m.SubImage(r).(*image.RGBA), nil
}

// libjpegProgressive reports whether JPEG b has several scans (progressive
// JPEG): any part of it then costs libjpeg-turbo a pass over all of its
// data into a whole-image coefficient buffer.
func libjpegProgressive(b []byte) bool {
	return len(b) > 0 && C.agProgressive((*C.uchar)(unsafe.Pointer(&b[0])), C.ulong(len(b))) == 1
}
