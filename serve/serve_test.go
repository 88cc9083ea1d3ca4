package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/internal/testmodel"
)

// fake is an Analyzer that decodes the photo like the library (within
// lim) and returns fixed faces, or panics, or blocks until release is
// closed.
type fake struct {
	faces   []agegender.Face
	panics  bool
	release chan struct{}
	lim     imageio.Limits
}

func (f *fake) AnalyzeReader(ctx context.Context, r io.Reader) (*agegender.Result, error) {
	img, info, err := imageio.DecodeInfo(r, f.lim)
	if err != nil {
		return nil, err
	}
	if f.panics {
		panic("injected panic")
	}
	if f.release != nil {
		<-f.release
	}
	return &agegender.Result{Width: info.Width, Height: info.Height, Faces: f.faces, Image: img}, nil
}

var oneFace = []agegender.Face{{Index: 0, Box: image.Rect(10, 20, 60, 70), Gender: agegender.Female, GenderProb: 0.8,
	AgeGroup: agegender.Age25To32, AgeProbs: agegender.AgeProbs{agegender.Age25To32: 0.6, agegender.Age38To43: 0.4}, DetectionScore: 0.9}}

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newService is New for a configuration that must be valid; it logs
// nowhere unless cfg has a logger.
func newService(t testing.TB, a Analyzer, cfg Config) *Service {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := New(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request to h and returns the recorded answer.
func do(h http.Handler, method, target string, body []byte, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func errorOf(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Status != rec.Code {
		t.Errorf("error answer is not {\"error\": ..., \"status\": %d} JSON: %q", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer has Content-Type %q", ct)
	}
	if id := rec.Header().Get("X-Request-ID"); id == "" || e.RequestID != id {
		t.Errorf("error answer's request_id %q, header X-Request-ID %q: want both, equal", e.RequestID, id)
	}
	return e.Error
}

func TestPredictRawBody(t *testing.T) {
	h := newService(t, &fake{faces: oneFace}, Config{})
	rec := do(h, "POST", "/v1/predict", pngBytes(t, 120, 90))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw map[string]any
	json.Unmarshal(rec.Body.Bytes(), &raw)
	for _, k := range []string{"faces", "width", "height", "elapsed_ms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("answer lacks %q: %s", k, rec.Body)
		}
	}
	if _, ok := raw["annotated"]; ok {
		t.Error("annotated image sent without ?annotate=1")
	}
	var r Response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Width != 120 || r.Height != 90 || len(r.Faces) != 1 || r.Faces[0].Box != oneFace[0].Box || r.Faces[0].AgeGroup != agegender.Age25To32 {
		t.Errorf("answer %+v", r)
	}
	if !strings.Contains(rec.Body.String(), `"box":[10,20,50,50]`) {
		t.Errorf("box not as [x,y,w,h]: %s", rec.Body)
	}
}

func TestPredictNoFaces(t *testing.T) {
	h := newService(t, &fake{}, Config{})
	rec := do(h, "POST", "/v1/predict", pngBytes(t, 10, 10))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"faces":[]`) {
		t.Errorf("status %d, body %s; want 200 with \"faces\":[]", rec.Code, rec.Body)
	}
}

func multipartBody(t testing.TB, field string, data []byte) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("note", "ignored")
	fw, _ := mw.CreateFormFile(field, "photo.png")
	fw.Write(data)
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func TestPredictMultipartAndAnnotate(t *testing.T) {
	h := newService(t, &fake{faces: oneFace}, Config{})
	body, ct := multipartBody(t, "image", pngBytes(t, 100, 80))
	rec := do(h, "POST", "/v1/predict?annotate=1", body, "Content-Type", ct)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var r Response
	json.Unmarshal(rec.Body.Bytes(), &r)
	b64, ok := strings.CutPrefix(r.Annotated, "data:image/png;base64,")
	if !ok {
		t.Fatalf("annotated = %.40q, want a PNG data URL", r.Annotated)
	}
	pngData, _ := base64.StdEncoding.DecodeString(b64)
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil || img.Bounds().Dx() != 100 || img.Bounds().Dy() != 80 {
		t.Errorf("annotated image: %v, %v", img.Bounds(), err)
	}

	body, ct = multipartBody(t, "photo", pngBytes(t, 10, 10))
	rec = do(h, "POST", "/v1/predict", body, "Content-Type", ct)
	if rec.Code != 400 || !strings.Contains(errorOf(t, rec), `"image"`) {
		t.Errorf("multipart without field image: %d %s", rec.Code, rec.Body)
	}
}

func TestBadRequests(t *testing.T) {
	h := newService(t, &fake{faces: oneFace, lim: imageio.Limits{MaxPixels: 100 * 100}}, Config{MaxBodyBytes: 4096})
	cases := []struct {
		name, method, target, ctype string
		body                        []byte
		want                        int
		says                        string // part of the error message
	}{
		{"garbage", "POST", "/v1/predict", "", []byte("this is not an image"), 400, "not a JPEG"},
		{"garbage bytes", "POST", "/v1/predict", "image/jpeg", []byte("\x00\x01\x02garbage"), 400, "JPEG, PNG"},
		{"truncated png", "POST", "/v1/predict", "", pngBytes(t, 50, 50)[:40], 400, "png"},
		{"empty", "POST", "/v1/predict", "", nil, 400, "empty file"},
		{"empty multipart field", "POST", "/v1/predict", "", nil, 400, "empty file"}, // body set below
		{"empty JSON image", "POST", "/v1/predict", "application/json", []byte(`{"image": ""}`), 400, "empty file"},
		{"JSON without image", "POST", "/v1/predict", "application/json", []byte(`{"photo": "abc"}`), 400, `{"image": "<base64>"}`},
		{"malformed JSON", "POST", "/v1/predict", "application/json", []byte(`{"image": `), 400, `{"image": "<base64>"}`},
		{"curl -d @photo", "POST", "/v1/predict", "application/x-www-form-urlencoded", bytes.ReplaceAll(pngBytes(t, 50, 50), []byte("\n"), nil), 400, "--data-binary"},
		{"URL in JSON", "POST", "/v1/predict", "application/json", []byte(`{"image": "https://example.com/a.jpg"}`), 400, "never fetches URLs"},
		{"bad base64", "POST", "/v1/predict", "text/plain", []byte("abcde="), 400, "base64"},
		{"data URI not base64", "POST", "/v1/predict", "text/plain", []byte("data:image/png,abc"), 400, "data:image/jpeg;base64,"},
		{"unsupported type", "POST", "/v1/predict", "application/xml", []byte("<img/>"), 415, `multipart/form-data file field "image"`},
		{"malformed type", "POST", "/v1/predict", "image/", []byte("x"), 400, "Content-Type"},
		{"body over limit", "POST", "/v1/predict", "", make([]byte, 5000), 413, "limit of 4096 bytes (4 KiB); send a smaller image, as raw bytes or multipart"},
		{"too many pixels", "POST", "/v1/predict", "", pngBytes(t, 200, 200), 413, "send a smaller image"},
		{"annotate not a boolean", "POST", "/v1/predict?annotate=banana", "", pngBytes(t, 50, 50), 400, "want 1 or true"},
		{"GET predict", "GET", "/v1/predict", "", nil, 405, "allowed: POST"},
		{"POST page", "POST", "/", "", nil, 405, "allowed: GET, HEAD"},
		{"unknown path", "GET", "/etc/passwd", "", nil, 404, "/openapi.json"},
		{"file name", "GET", "/serve.go", "", nil, 404, "no such path /serve.go"},
		{"preflight without CORS", "OPTIONS", "/v1/predict", "", nil, 405, "OPTIONS"},
		// ServeMux cleans the path and redirects to /serve.go, itself 404.
		{"dot dot", "GET", "/../serve.go", "", nil, 307, ""},
	}
	for _, c := range cases {
		body, ctype := c.body, c.ctype
		if c.name == "empty multipart field" {
			body, ctype = multipartBody(t, "image", nil)
		}
		rec := do(h, c.method, c.target, body, "Content-Type", ctype)
		if rec.Code != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, rec.Code, c.want, rec.Body)
			continue
		}
		if c.want >= 400 {
			msg := errorOf(t, rec)
			t.Logf("%s: %d %s", c.name, c.want, msg)
			if !strings.Contains(msg, c.says) {
				t.Errorf("%s: message %q does not say %q", c.name, msg, c.says)
			}
		}
	}
	// The limits are stated as numbers too.
	var e errorBody
	json.Unmarshal(do(h, "POST", "/v1/predict", make([]byte, 5000)).Body.Bytes(), &e)
	if e.MaxBytes != 4096 {
		t.Errorf("413 for the body: max_bytes %d, want 4096", e.MaxBytes)
	}
	// Two photos in one multipart body are refused.
	var two bytes.Buffer
	mw := multipart.NewWriter(&two)
	for range 2 {
		w, _ := mw.CreateFormFile("image", "a.png")
		w.Write(pngBytes(t, 8, 8))
	}
	mw.Close()
	if rec := do(h, "POST", "/v1/predict", two.Bytes(), "Content-Type", mw.FormDataContentType()); rec.Code != 400 || !strings.Contains(rec.Body.String(), "more than one field") {
		t.Errorf("two image fields: %d %s; want 400 saying more than one", rec.Code, rec.Body)
	}
	// A body over the limit inside a multipart form is 413 too.
	body, ct := multipartBody(t, "image", make([]byte, 5000))
	if rec := do(h, "POST", "/v1/predict", body, "Content-Type", ct); rec.Code != 413 {
		t.Errorf("multipart over limit: %d", rec.Code)
	}
}

// TestBodyFormats sends the same image in every accepted form.
func TestBodyFormats(t *testing.T) {
	h := newService(t, &fake{faces: oneFace}, Config{})
	img := pngBytes(t, 30, 20)
	b64 := base64.StdEncoding.EncodeToString(img)
	wrapped := ""
	for i := 0; i < len(b64); i += 20 {
		wrapped += b64[i:min(i+20, len(b64))] + "\r\n"
	}
	jsonBody, _ := json.Marshal(map[string]string{"image": b64})
	jsonURI, _ := json.Marshal(map[string]string{"image": "data:image/png;base64," + b64})
	mpB64, mpB64Type := multipartBody(t, "image", []byte(b64))
	mp, mpType := multipartBody(t, "image", img)
	cases := []struct {
		name, ctype string
		body        []byte
	}{
		{"raw, no type", "", img},
		{"raw image/png", "image/png", img},
		{"raw octet-stream", "application/octet-stream", img},
		{"multipart", mpType, mp},
		{"multipart base64", mpB64Type, mpB64},
		{"base64 text", "text/plain", []byte(b64)},
		{"base64 with line breaks", "text/plain; charset=utf-8", []byte(wrapped)},
		{"base64 URL alphabet, unpadded", "", []byte(base64.RawURLEncoding.EncodeToString(img))},
		{"base64 as curl -d sends it", "application/x-www-form-urlencoded", []byte(b64)},
		{"form field image=", "application/x-www-form-urlencoded", []byte("image=" + url.QueryEscape(b64))},
		{"data URI", "text/plain", []byte("data:image/png;base64," + b64)},
		{"data URI, no type", "", []byte("data:image/png;base64," + b64)},
		{"JSON", "application/json", jsonBody},
		{"JSON data URI", "application/json; charset=utf-8", jsonURI},
	}
	for _, c := range cases {
		rec := do(h, "POST", "/v1/predict", c.body, "Content-Type", c.ctype)
		var r Response
		json.Unmarshal(rec.Body.Bytes(), &r)
		if rec.Code != 200 || r.Width != 30 || r.Height != 20 {
			t.Errorf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
	}
}

func TestAuth(t *testing.T) {
	h := newService(t, &fake{faces: oneFace}, Config{Token: "s3cret"})
	img := pngBytes(t, 20, 20)
	if rec := do(h, "POST", "/v1/predict", img); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d, want 401 with WWW-Authenticate", rec.Code)
	}
	if rec := do(h, "POST", "/v1/predict", img, "Authorization", "Bearer wrong"); rec.Code != 401 {
		t.Errorf("wrong token: %d, want 401", rec.Code)
	}
	if rec := do(h, "POST", "/v1/predict", img, "Authorization", "Bearer s3cret"); rec.Code != 200 {
		t.Errorf("right token: %d, want 200", rec.Code)
	}
	if rec := do(h, "GET", "/healthz", nil); rec.Code != 200 || rec.Body.String() != `{"status":"ok"}`+"\n" {
		t.Errorf("healthz without token: %d %q", rec.Code, rec.Body)
	}
	if rec := do(h, "GET", "/", nil); rec.Code != 200 {
		t.Errorf("page without token: %d", rec.Code)
	}
}

func TestPanicRecovery(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	srv := httptest.NewServer(newService(t, &fake{panics: true}, Config{Logger: log}))
	defer srv.Close()
	for i := range 2 { // the server keeps running after the first panic
		res, err := http.Post(srv.URL+"/v1/predict", "image/png", bytes.NewReader(pngBytes(t, 10, 10)))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 500 || !strings.Contains(string(b), "internal error") {
			t.Errorf("request %d: %d %s, want 500", i, res.StatusCode, b)
		}
	}
	if res, err := http.Get(srv.URL + "/healthz"); err != nil || res.StatusCode != 200 {
		t.Errorf("healthz after panics: %v %v", res, err)
	}
	if !strings.Contains(logs.String(), "injected panic") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

func TestBusy(t *testing.T) {
	f := &fake{faces: oneFace, release: make(chan struct{})}
	h := newService(t, f, Config{MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond})
	img := pngBytes(t, 10, 10)
	var wg sync.WaitGroup
	var first *httptest.ResponseRecorder
	wg.Go(func() { first = do(h, "POST", "/v1/predict", img) })
	// Wait until the first request holds the only slot.
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	rec := do(h, "POST", "/v1/predict", img)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("second request: %d, want 503 with Retry-After", rec.Code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("503 took %v; it should come after the 50 ms queue timeout", d)
	}
	close(f.release)
	wg.Wait()
	if first.Code != 200 {
		t.Errorf("first request: %d", first.Code)
	}
	if rec := do(h, "POST", "/v1/predict", img); rec.Code != 200 {
		t.Errorf("after the slot is free: %d", rec.Code)
	}
}

func TestLogRecord(t *testing.T) {
	var logs bytes.Buffer
	h := newService(t, &fake{faces: oneFace}, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	do(h, "POST", "/v1/predict", pngBytes(t, 10, 10))
	var rec map[string]any
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
		t.Fatalf("log is not one JSON record: %q", logs.String())
	}
	for k, want := range map[string]any{"method": "POST", "path": "/v1/predict", "status": 200.0, "faces": 1.0} {
		if rec[k] != want {
			t.Errorf("log %s = %v, want %v", k, rec[k], want)
		}
	}
	if _, ok := rec["duration_ms"]; !ok {
		t.Error("log lacks duration_ms")
	}
}

func TestPage(t *testing.T) {
	h := newService(t, &fake{}, Config{})
	rec := do(h, "GET", "/", nil)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	for _, want := range []string{`type="file"`, "v1/predict", "<canvas"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Self-contained: no external scripts, styles, fonts or images.
	for _, bad := range []string{"http://", "https://", "src=\"/", "<link"} {
		if strings.Contains(body, bad) {
			t.Errorf("page refers to an external resource (%s)", bad)
		}
	}
}

func TestRunShutsDownGracefully(t *testing.T) {
	f := &fake{faces: oneFace, release: make(chan struct{})}
	srv := NewServer("127.0.0.1:0", newService(t, f, Config{}))
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 {
		t.Errorf("server lacks timeouts: %+v", srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	addr := make(chan string, 1)
	go func() { done <- Run(ctx, srv, ln, func(a string) { addr <- a }) }()
	url := "http://" + <-addr
	// A request in progress when shutdown starts still gets its answer.
	got := make(chan int, 1)
	go func() {
		res, err := http.Post(url+"/v1/predict", "image/png", bytes.NewReader(pngBytes(t, 10, 10)))
		if err != nil {
			got <- -1
			return
		}
		res.Body.Close()
		got <- res.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(f.release)
	if code := <-got; code != 200 {
		t.Errorf("request in flight during shutdown: %d, want 200", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

// utkFace is a real adult face from the shared UTKFace folder.
func utkFace(t testing.TB) string { return datatest.UTKFace(t) }

func TestRealFace(t *testing.T) {
	g, a, err := testmodel.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	an, err := agegender.New(agegender.Options{GenderModel: g, AgeModel: a})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	data, err := os.ReadFile(utkFace(t))
	if err != nil {
		t.Fatal(err)
	}
	h := newService(t, an, Config{})
	rec := do(h, "POST", "/v1/predict", data, "Content-Type", "image/jpeg")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var r Response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", rec.Body)
	// The library's real answer matches the documented schema.
	loadSpec(t).checkAnswer(t, "POST", "/v1/predict", rec)
	if len(r.Faces) != 1 || r.Width != 200 || r.Height != 200 {
		t.Fatalf("got %d faces in %dx%d, want 1 in 200x200", len(r.Faces), r.Width, r.Height)
	}
	f := r.Faces[0]
	if f.Box.Dx() < 100 || f.GenderProb < 0.5 || f.DetectionScore <= 0 {
		t.Errorf("face %+v", f)
	}
}

// TestOverLimitPhotoDownscaled: a photo over the analyzer's pixel limit is
// analysed downscaled, not refused with 413, and the answer is in the
// photo's pixels.
func TestOverLimitPhotoDownscaled(t *testing.T) {
	g, a, err := testmodel.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	an, err := agegender.New(agegender.Options{GenderModel: g, AgeModel: a, Limits: imageio.Limits{MaxPixels: 60_000}})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	data, err := os.ReadFile(filepath.Join(datatest.RepoRoot(), "testdata", "face.jpg")) // 320×400
	if err != nil {
		t.Fatal(err)
	}
	rec := do(newService(t, an, Config{}), "POST", "/v1/predict?annotate=1", data, "Content-Type", "image/jpeg")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var r Response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Width != 320 || r.Height != 400 || len(r.Faces) != 1 || r.Annotated == "" {
		t.Fatalf("answer %dx%d with %d faces; want 320x400 with the one face", r.Width, r.Height, len(r.Faces))
	}
	// The face of testdata/face.jpg is about 200 px wide near (58, 134).
	if b := r.Faces[0].Box; b.Dx() < 150 || b.Min.X < 30 || b.Min.X > 90 || !b.In(image.Rect(0, 0, 320, 400)) {
		t.Errorf("box %v is not in the photo's pixels", b)
	}
}
