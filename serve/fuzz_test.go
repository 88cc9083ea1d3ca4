package serve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
)

// stubAnalyzer decodes like the library and answers one face for every
// image, without a network.
type stubAnalyzer struct{}

func (stubAnalyzer) AnalyzeReader(ctx context.Context, r io.Reader) (*agegender.Result, error) {
	img, info, err := imageio.DecodeInfo(r, imageio.Limits{MaxPixels: 1 << 20})
	if err != nil {
		return nil, err
	}
	f := agegender.Face{Box: img.Bounds(), Gender: agegender.Female, GenderProb: 0.9, AgeGroup: agegender.Age25To32}
	return &agegender.Result{Width: info.Width, Height: info.Height, Faces: []agegender.Face{f}, Image: img}, nil
}

// FuzzHandler sends arbitrary methods, paths, content types and bodies to
// the service: every answer is a well-formed HTTP status, never a panic
// or a 5xx other than the documented 503, and every error is JSON.
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/v1/predict", "image/png", []byte("\x89PNG\r\n\x1a\n"))
	f.Add("POST", "/v1/predict", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a\"\r\n\r\nabc\r\n--x--\r\n"))
	f.Add("GET", "/", "", []byte{})
	f.Add("GET", "/../../etc/passwd", "", []byte{})
	f.Add("PUT", "/v1/predict?annotate=1", "application/octet-stream", []byte("GIF89a"))
	f.Add("POST", "/v1/predict", "application/json", []byte(`{"image": "data:image/png;base64,iVBORw0KGgo="}`))
	f.Add("POST", "/v1/predict", "text/plain", []byte("iVBORw0KGgo"))
	f.Add("POST", "/v1/predict", "application/x-www-form-urlencoded", []byte("image=iVBOR%2Bw0KGgo"))
	f.Add("OPTIONS", "/v1/predict", "", []byte{})
	h, err := New(stubAnalyzer{}, Config{MaxBodyBytes: 1 << 16, CORSOrigins: []string{"https://example.com"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		if path == "" || path[0] != '/' {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://x"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q (%s, %d bytes): status %d: %s", method, path, ctype, len(body), rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s %q (%s, %d bytes): status %d answered as %q, not JSON", method, path, ctype, len(body), rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}
