package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// howToSend ends every error about the form of a /v1/predict body.
const howToSend = `send the image as the raw body (Content-Type image/jpeg, image/png, ...), ` +
	`as the multipart/form-data file field "image", as base64 or a data: URI (text/plain), ` +
	`or as JSON {"image": "<base64>"} (application/json)`

// readImage returns the encoded image of a /v1/predict request, whose body
// is already bounded by http.MaxBytesReader at limit bytes. It accepts:
//
//   - raw image bytes (any image/* type, application/octet-stream, or no
//     Content-Type);
//   - multipart/form-data with the image in the field "image";
//   - application/json: {"image": "<base64 or data: URI>"};
//   - base64 text or a data: URI ("data:image/jpeg;base64,...") as the
//     body (text/plain, curl's default application/x-www-form-urlencoded,
//     or any of the raw types: a body made only of base64 characters is
//     taken as base64).
//
// Any other Content-Type is a 415; an empty image, malformed multipart,
// JSON or base64 is a 400; a body over the limit is a 413. Every message
// says what to send instead.
func readImage(r *http.Request, limit int64) ([]byte, *apiError) {
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("malformed Content-Type %q: %v; %s", ct, err, howToSend)}
		}
	}
	switch {
	case mt == "multipart/form-data":
		return readMultipart(r, limit)
	case mt == "application/json":
		return readJSON(r.Body, limit)
	case mt == "", mt == "application/octet-stream", mt == "text/plain",
		mt == "application/x-www-form-urlencoded", strings.HasPrefix(mt, "image/"):
		b, aerr := readAll(r.Body, limit, "the body")
		if aerr != nil {
			return nil, aerr
		}
		if mt == "application/x-www-form-urlencoded" && bytes.HasPrefix(b, []byte("image=")) {
			// A form field image=<base64>: undo the form encoding. Clients
			// that did not encode '+' as %2B sent it as is, which decoding
			// turns into ' '; base64 has no spaces, so turn them back.
			v, err := url.QueryUnescape(string(b[len("image="):]))
			if err != nil {
				return nil, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("malformed form field image: %v; %s", err, howToSend)}
			}
			return fromText(strings.ReplaceAll(v, " ", "+"))
		}
		if isText(b) {
			return fromText(string(b))
		}
		return b, nil
	default:
		return nil, &apiError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("unsupported Content-Type %q: %s", mt, howToSend)}
	}
}

// readAll reads r whole; what names it in messages.
func readAll(r io.Reader, limit int64, what string) ([]byte, *apiError) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, readError(err, limit, what)
	}
	if len(b) == 0 {
		return nil, emptyFile()
	}
	return b, nil
}

func emptyFile() *apiError {
	return &apiError{status: http.StatusBadRequest, msg: "empty file: the request holds no image; " + howToSend}
}

// readError is a 413 that states the limit for a body over it, else a 400.
func readError(err error, limit int64, what string) *apiError {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &apiError{status: http.StatusRequestEntityTooLarge, maxBytes: limit,
			msg: fmt.Sprintf("request body over the limit of %d bytes (%s); send a smaller image, as raw bytes or multipart (base64 and data: URIs make it a third larger)", limit, humanBytes(limit))}
	}
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("reading %s: %v", what, err)}
}

// readMultipart returns the content of the form field "image".
func readMultipart(r *http.Request, limit int64) ([]byte, *apiError) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("malformed multipart body: %v; %s", err, howToSend)}
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, &apiError{status: http.StatusBadRequest, msg: `the multipart body has no field "image": name the file field "image"`}
		}
		if err != nil {
			aerr := readError(err, limit, "the multipart body")
			if aerr.status == http.StatusBadRequest {
				aerr.msg += "; " + howToSend
			}
			return nil, aerr
		}
		if p.FormName() != "image" {
			continue
		}
		b, aerr := readAll(p, limit, `the multipart field "image"`)
		if aerr != nil {
			return nil, aerr
		}
		if aerr := noSecondImage(mr, limit); aerr != nil {
			return nil, aerr
		}
		if isText(b) {
			return fromText(string(b))
		}
		return b, nil
	}
}

// noSecondImage reads the rest of a multipart body and refuses a second
// field "image": one request analyses one photo.
func noSecondImage(mr *multipart.Reader, limit int64) *apiError {
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readError(err, limit, "the multipart body")
		}
		if p.FormName() == "image" {
			return &apiError{status: http.StatusBadRequest, msg: `the multipart body has more than one field "image": send one photo per request`}
		}
	}
}

// readJSON returns the image of a body {"image": "<base64 or data: URI>"}.
func readJSON(r io.Reader, limit int64) ([]byte, *apiError) {
	var req struct {
		Image *string `json:"image"`
	}
	if err := json.NewDecoder(r).Decode(&req); err != nil {
		if err == io.EOF {
			return nil, emptyFile()
		}
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, readError(err, limit, "the body")
		}
		return nil, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(`malformed JSON body (%v): send {"image": "<base64>"}`, err)}
	}
	if req.Image == nil {
		return nil, &apiError{status: http.StatusBadRequest, msg: `the JSON body has no string field "image": send {"image": "<base64>"}`}
	}
	return fromText(*req.Image)
}

// isText reports whether b holds only the characters of base64 (standard
// or URL alphabet, padding, white space) or starts a data: URI. Encoded
// images are binary and practically always hold some other byte.
func isText(b []byte) bool {
	if bytes.HasPrefix(b, []byte("data:")) {
		return true
	}
	for _, c := range b {
		if !isBase64Char(c) {
			return false
		}
	}
	return true
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_' || c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t'
}

// fromText decodes base64 (standard or URL alphabet, padded or not, line
// breaks allowed) or a data: URI with base64 content.
func fromText(s string) ([]byte, *apiError) {
	s = strings.TrimSpace(s)
	if low := strings.ToLower(s); strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://") {
		return nil, &apiError{status: http.StatusBadRequest, msg: "a URL: the service never fetches URLs; " + howToSend}
	}
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return nil, &apiError{status: http.StatusBadRequest, msg: `malformed data: URI: it must be base64, like "data:image/jpeg;base64,/9j/4AAQ..."`}
		}
		s = data
	}
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return nil, emptyFile()
	}
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("the image text is not valid base64 (%v); %s", err, howToSend)}
	}
	if len(b) == 0 {
		return nil, emptyFile()
	}
	return b, nil
}

// humanBytes spells n bytes in KiB or MiB, like "20 MiB" or "4 KiB".
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', -1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
