package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRequestID(t *testing.T) {
	var logs bytes.Buffer
	h := newService(t, &fake{faces: oneFace}, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	rec := do(h, "POST", "/v1/predict", pngBytes(t, 10, 10), "X-Request-ID", "client-id-42")
	if got := rec.Header().Get("X-Request-ID"); got != "client-id-42" {
		t.Errorf("client's id not returned: %q", got)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "quote\"d"} {
		rec := do(h, "GET", "/healthz", nil, "X-Request-ID", bad)
		if got := rec.Header().Get("X-Request-ID"); !hex32.MatchString(got) {
			t.Errorf("X-Request-ID %q: answered %q, want a new 32-hex-digit id", bad, got)
		}
	}
	a := do(h, "GET", "/healthz", nil).Header().Get("X-Request-ID")
	b := do(h, "GET", "/healthz", nil).Header().Get("X-Request-ID")
	if a == b {
		t.Errorf("two requests got the same id %q", a)
	}
	if !strings.Contains(strings.SplitN(logs.String(), "\n", 2)[0], `"request_id":"client-id-42"`) {
		t.Errorf("log line lacks the request id: %s", logs.String())
	}
}

// TestLogSaysWhy checks that every request is logged with its id, and a
// rejected one with the reason at level WARN (4xx) or ERROR (5xx).
func TestLogSaysWhy(t *testing.T) {
	var logs bytes.Buffer
	h := newService(t, &fake{panics: true}, Config{Token: "t", MaxBodyBytes: 100, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	cases := []struct {
		method, path string
		body         []byte
		header       []string
		level        string
		reason       string
	}{
		{"POST", "/v1/predict", nil, nil, "WARN", "missing token"},
		{"POST", "/v1/predict", nil, []string{"Authorization", "Bearer x"}, "WARN", "wrong token"},
		{"POST", "/v1/predict", make([]byte, 200), []string{"Authorization", "Bearer t"}, "WARN", "limit of 100 bytes"},
		{"POST", "/v1/predict", nil, []string{"Authorization", "Bearer t", "Content-Type", "application/pdf"}, "WARN", "unsupported Content-Type"},
		{"POST", "/v1/predict", pngBytes(t, 5, 5), []string{"Authorization", "Bearer t"}, "ERROR", "injected panic"},
		{"GET", "/nope", nil, nil, "WARN", "no such path"},
		{"GET", "/healthz", nil, nil, "INFO", ""},
	}
	for i, c := range cases {
		logs.Reset()
		id := fmt.Sprint("id-", i)
		rec := do(h, c.method, c.path, c.body, append([]string{"X-Request-ID", id}, c.header...)...)
		var rec2 map[string]any
		if err := json.Unmarshal(logs.Bytes(), &rec2); err != nil {
			t.Fatalf("%s %s: log is not one JSON record: %q", c.method, c.path, logs.String())
		}
		reason, _ := rec2["reason"].(string)
		if rec2["level"] != c.level || !strings.Contains(reason, c.reason) || (c.reason == "" && reason != "") {
			t.Errorf("%s %s (%d): logged level %v reason %q, want %s %q", c.method, c.path, rec.Code, rec2["level"], reason, c.level, c.reason)
		}
		if rec2["request_id"] != id || rec2["status"] != float64(rec.Code) {
			t.Errorf("%s %s: log record %v lacks the request id or status", c.method, c.path, rec2)
		}
	}
}

func TestAuthHeaders(t *testing.T) {
	h := newService(t, &fake{faces: oneFace}, Config{Token: "s3cret"})
	rec := do(h, "POST", "/v1/predict", nil)
	if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="agegender"` {
		t.Errorf("no token: WWW-Authenticate %q", got)
	}
	errorOf(t, rec)
	rec = do(h, "POST", "/v1/predict", nil, "Authorization", "Bearer nope")
	if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("wrong token: WWW-Authenticate %q", got)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/"} {
		if rec := do(h, "GET", p, nil); rec.Code != 200 {
			t.Errorf("%s without a token: %d, want 200", p, rec.Code)
		}
	}
}

func TestCORS(t *testing.T) {
	if _, err := New(&fake{}, Config{CORSOrigins: []string{"example.com"}}); err == nil || !strings.Contains(err.Error(), "scheme://host") {
		t.Errorf("origin without scheme: error %v, want one that shows the form", err)
	}
	if _, err := New(&fake{}, Config{CORSOrigins: []string{"https://example.com/app"}}); err == nil {
		t.Error("origin with a path accepted")
	}
	preflight := func(h http.Handler, origin string) *httpResult {
		return result(do(h, "OPTIONS", "/v1/predict", nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type"))
	}

	off := newService(t, &fake{faces: oneFace}, Config{})
	if r := preflight(off, "https://a.example"); r.code != 405 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: preflight %d, ACAO %q; want 405 and none", r.code, r.header.Get("Access-Control-Allow-Origin"))
	}

	on := newService(t, &fake{faces: oneFace}, Config{CORSOrigins: []string{"https://A.example", "http://localhost:3000"}})
	r := preflight(on, "https://a.example")
	if r.code != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://a.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") || r.header.Get("Vary") != "Origin" {
		t.Errorf("allowed preflight: %d %v", r.code, r.header)
	}
	if r := preflight(on, "https://evil.example"); r.code != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin's preflight: %d %v; want 403 without ACAO", r.code, r.header)
	}
	rec := do(on, "POST", "/v1/predict", pngBytes(t, 10, 10), "Origin", "http://localhost:3000")
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
		!strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Errorf("allowed POST: %d %v", rec.Code, rec.Header())
	}
	if rec := do(on, "POST", "/v1/predict", pngBytes(t, 10, 10), "Origin", "https://evil.example"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin's POST got ACAO %q", rec.Header().Get("Access-Control-Allow-Origin"))
	}

	// "*" allows any origin; a preflight is answered before authentication,
	// which browsers never send on it.
	anyOrigin := newService(t, &fake{faces: oneFace}, Config{CORSOrigins: []string{"*"}, Token: "t"})
	if r := preflight(anyOrigin, "https://b.example"); r.code != 204 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf(`"*": preflight %d %v`, r.code, r.header)
	}
}

type httpResult struct {
	code   int
	header http.Header
}

func result(rec interface {
	Result() *http.Response
}) *httpResult {
	res := rec.Result()
	return &httpResult{res.StatusCode, res.Header}
}

func TestReadiness(t *testing.T) {
	s := newService(t, nil, Config{})
	if rec := do(s, "GET", "/healthz", nil); rec.Code != 200 {
		t.Errorf("healthz while loading: %d", rec.Code)
	}
	if rec := do(s, "GET", "/readyz", nil); rec.Code != 503 || !strings.Contains(errorOf(t, rec), "loading") || rec.Header().Get("Retry-After") == "" {
		t.Errorf("readyz while loading: %d %s, want 503 with Retry-After", rec.Code, rec.Body)
	}
	if rec := do(s, "POST", "/v1/predict", pngBytes(t, 10, 10)); rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("predict while loading: %d %s, want 503 with Retry-After", rec.Code, rec.Body)
	}
	s.SetAnalyzer(&fake{faces: oneFace})
	if rec := do(s, "GET", "/readyz", nil); rec.Code != 200 || rec.Body.String() != `{"status":"ready"}`+"\n" {
		t.Errorf("readyz once loaded: %d %s", rec.Code, rec.Body)
	}
	if rec := do(s, "POST", "/v1/predict", pngBytes(t, 10, 10)); rec.Code != 200 {
		t.Errorf("predict once loaded: %d", rec.Code)
	}
	s.Drain()
	if rec := do(s, "GET", "/readyz", nil); rec.Code != 503 || !strings.Contains(errorOf(t, rec), "shutting down") {
		t.Errorf("readyz while draining: %d %s", rec.Code, rec.Body)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		if rec := do(s, "GET", p, nil); rec.Code != 200 {
			t.Errorf("%s while draining: %d, want 200", p, rec.Code)
		}
	}
	rec := do(s, "POST", "/v1/predict", pngBytes(t, 10, 10))
	if rec.Code != 503 || rec.Header().Get("Connection") != "close" {
		t.Errorf("predict while draining: %d %v, want 503 with Connection: close", rec.Code, rec.Header())
	}
	errorOf(t, rec)
	// The refused request is counted under its route, not "unmatched".
	if m := do(s, "GET", "/metrics", nil).Body.String(); !strings.Contains(m, `agegender_http_requests_total{code="503",method="POST",route="POST /v1/predict"} 2`) {
		t.Errorf("the 503s of /v1/predict (loading, draining) are not counted under their route:\n%s", m)
	}
}

func TestMetrics(t *testing.T) {
	s := newService(t, &fake{faces: oneFace}, Config{Model: ModelInfo{Backend: "go", Detector: "pigo", GenderModel: "builtin", AgeModel: "age.agm"}})
	do(s, "POST", "/v1/predict", pngBytes(t, 10, 10))
	do(s, "POST", "/v1/predict", pngBytes(t, 10, 10))
	do(s, "POST", "/v1/predict", nil)
	do(s, "GET", "/no/such/path", nil)
	do(s, "BREW", "/", nil)
	rec := do(s, "GET", "/metrics", nil)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	text := rec.Body.String()
	for _, want := range []string{
		`agegender_http_requests_total{code="200",method="POST",route="POST /v1/predict"} 2`,
		`agegender_http_requests_total{code="400",method="POST",route="POST /v1/predict"} 1`,
		`agegender_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`agegender_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`agegender_http_request_duration_seconds_count{route="POST /v1/predict"} 3`,
		`agegender_faces_analysed_total 2`,
		`agegender_queue_depth 0`,
		`agegender_http_requests_in_flight 1`, // the /metrics request itself
		`agegender_ready 1`,
		`agegender_model_info{age_model="age.agm",backend="go",detector="pigo",gender_model="builtin",tencrop="false"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestQueueDepth watches the queue gauge while requests wait for the only
// analysis slot.
func TestQueueDepth(t *testing.T) {
	f := &fake{faces: oneFace, release: make(chan struct{})}
	s := newService(t, f, Config{MaxConcurrent: 1})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { do(s, "POST", "/v1/predict", pngBytes(t, 10, 10)) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(do(s, "GET", "/metrics", nil).Body.String(), "agegender_queue_depth 2") {
		if time.Now().After(deadline) {
			t.Fatal("queue depth never reached 2 with 3 requests and 1 slot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(f.release)
	wg.Wait()
	if !strings.Contains(do(s, "GET", "/metrics", nil).Body.String(), "agegender_queue_depth 0") {
		t.Error("queue depth not back to 0")
	}
}

// TestDrainOnShutdown runs a real server: when its context is cancelled
// (as SIGTERM does in the command), a request in flight still gets its
// answer, new requests get 503, and Run returns once the first is done.
func TestDrainOnShutdown(t *testing.T) {
	f := &fake{faces: oneFace, release: make(chan struct{})}
	s := newService(t, f, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, NewServer("", s), ln, nil) }()
	url := "http://" + ln.Addr().String()
	post := func() (int, error) {
		res, err := http.Post(url+"/v1/predict", "image/png", bytes.NewReader(pngBytes(t, 10, 10)))
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	first := make(chan int, 1)
	go func() {
		code, err := post()
		if err != nil {
			t.Errorf("request in flight: %v", err)
		}
		first <- code
	}()
	for s.InFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for !s.draining.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	if code, err := post(); err != nil || code != 503 {
		t.Errorf("new request while draining: %d %v, want 503", code, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(f.release)
	if code := <-first; code != 200 {
		t.Errorf("request in flight during the drain: %d, want 200", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the last request finished")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}
