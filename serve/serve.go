// Package serve is agegender's HTTP service: it answers photos posted to
// it with every face's gender and age, and serves a web page where a
// person can try it.
//
// Routes (described for machines in openapi.json, served at /openapi.json):
//
//	POST /v1/predict    the image, as raw bytes, as the multipart field
//	                    "image", as base64 or a data: URI, or as JSON
//	                    {"image": "<base64>"}; answers JSON (see Response).
//	                    With ?annotate=1 the answer also holds the picture
//	                    with the faces drawn on it, as a PNG data URL.
//	GET  /healthz       liveness: 200 while the process serves HTTP.
//	GET  /readyz        readiness: 200 once the models are loaded, 503
//	                    while they load and while the service drains.
//	GET  /metrics       Prometheus metrics (text exposition format).
//	GET  /openapi.json  the OpenAPI 3.1 description of these routes.
//	GET  /              the web page (self-contained, no external resources).
//
// Every answer carries an X-Request-ID header (the client's, when it sent
// a sane one, else a new random id), and every error answer is a JSON
// object {"error": "...", "status": N, "request_id": "..."}. Each request is
// logged once with log/slog, with its id, status and, when it was
// rejected, why.
//
// The service keeps no state between requests, so replicas can sit behind
// any load balancer. It never touches the file system on behalf of a
// request. It bounds what one request can cost (body size, image
// dimensions, a limit on images analysed at once), recovers from panics in
// handlers and, given a token, requires "Authorization: Bearer <token>" on
// /v1/ routes. CORS is off unless Config.CORSOrigins names origins.
//
// A typical program starts listening at once, loads the models, and then
// declares itself ready:
//
//	s, err := serve.New(nil, serve.Config{}) // not ready yet: /readyz is 503
//	if err != nil { ... }                    // only for a malformed Config
//	go func() {
//		a, err := agegender.New(agegender.Options{})
//		if err != nil { ... }
//		s.SetAnalyzer(a) // ready: /readyz is 200
//	}()
//	// Run returns after ctx is cancelled and the requests in flight finish.
//	err = serve.Run(ctx, serve.NewServer("127.0.0.1:8080", s), nil, nil)
package serve

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agegender/agegender"
)

// Analyzer is what the service needs from an *agegender.Analyzer: it
// decodes the photo within its limits (agegender.Options.Limits: photos
// over the pixel limit are downscaled, only those beyond its decoding
// bound are refused with agegender.ErrTooLarge) and analyses it. Tests
// substitute their own.
type Analyzer interface {
	AnalyzeReader(ctx context.Context, r io.Reader) (*agegender.Result, error)
}

// Config tunes New. The zero value is ready to use.
type Config struct {
	// Token, when not empty, is required as "Authorization: Bearer <Token>"
	// on /v1/ routes. The page, /openapi.json, /healthz, /readyz and
	// /metrics stay open.
	Token string
	// MaxBodyBytes bounds a request body as sent (base64 counts as sent,
	// about 4/3 of the image); larger requests get 413. Default 20 MiB.
	MaxBodyBytes int64
	// MaxConcurrent is how many requests are analysed at once. Default:
	// the number of CPUs.
	MaxConcurrent int
	// QueueTimeout is how long a request waits for one of the
	// MaxConcurrent slots before it gets 503. Default 30 seconds: a
	// waiting request has not read its body yet, so waiting costs almost
	// no memory, and a burst of hundreds of clients is served in turn
	// rather than refused (bench/load.sh: 200 connections, no errors).
	QueueTimeout time.Duration
	// CORSOrigins are the origins (scheme://host[:port]) whose pages may
	// call the API from a browser, or "*" for any. Empty: CORS is off and
	// browsers allow only pages served by this service.
	CORSOrigins []string
	// DrainDelay is how long Run keeps answering while draining (new
	// requests get 503, /readyz says not ready) even when no request is in
	// flight, so that a load balancer polling /readyz notices. Default 0.
	DrainDelay time.Duration
	// Model describes what the service runs, for the agegender_model_info
	// metric. Empty fields are reported as "unknown".
	Model ModelInfo
	// Logger receives one record per request. Default slog.Default().
	Logger *slog.Logger
}

// ModelInfo names the models and backend behind a service.
type ModelInfo struct {
	Backend     string // compute backend, like "go" or "onnx"
	Detector    string // face detector, like "blazeface" or "pigo"
	GenderModel string // model file, or "builtin"
	AgeModel    string // model file, or "builtin"
	TenCrop     bool   // whether each face is averaged over 10 crops
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 20 << 20
	DefaultQueueTimeout = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = runtime.NumCPU()
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Response is the JSON answer of POST /v1/predict (schema "Prediction" in
// openapi.json): the library's agegender.Result ("width", "height" and
// "faces", each face as documented on agegender.Face, in the photo's
// pixels) and the fields below.
type Response struct {
	agegender.Result
	// ElapsedMS is the time spent decoding and analysing, in milliseconds.
	ElapsedMS float64 `json:"elapsed_ms"`
	// Annotated is the image with boxes and labels drawn, as a
	// "data:image/png;base64,..." URL; only with ?annotate=1.
	Annotated string `json:"annotated,omitempty"`
}

//go:embed page.html
var page []byte

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 description of the service's routes
// (JSON), as served at /openapi.json.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// Service is the HTTP service: an http.Handler with all routes. Create
// one with New; it is safe for concurrent use.
type Service struct {
	cfg     Config
	cors    corsPolicy
	sem     chan struct{}
	metrics *metrics
	handler http.Handler

	analyzer atomic.Pointer[analyzerRef] // nil until SetAnalyzer
	draining atomic.Bool
	inFlight atomic.Int64 // requests being handled
}

type analyzerRef struct{ a Analyzer }

// New returns the service for a, which may be nil while the models are
// still loading (call SetAnalyzer when they are). It fails only for a
// malformed cfg (an origin in CORSOrigins that is not "*" or
// scheme://host[:port]).
func New(a Analyzer, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	cors, err := newCORS(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, cors: cors, sem: make(chan struct{}, cfg.MaxConcurrent), metrics: newMetrics(cfg.Model)}
	s.handler = s.routes()
	if a != nil {
		s.SetAnalyzer(a)
	}
	return s, nil
}

// SetAnalyzer makes the service ready: /v1/predict uses a from now on and
// /readyz answers 200 (unless the service is draining).
func (s *Service) SetAnalyzer(a Analyzer) {
	s.analyzer.Store(&analyzerRef{a})
	if !s.draining.Load() {
		s.metrics.ready.Set(1)
	}
}

// Drain starts the graceful end: from now on /readyz answers 503 and new
// requests other than /healthz, /readyz and /metrics get 503 with
// "Connection: close", while requests already in flight finish. Run calls
// it when its context is cancelled.
func (s *Service) Drain() {
	s.draining.Store(true)
	s.metrics.ready.Set(0)
}

// InFlight is the number of requests being handled now.
func (s *Service) InFlight() int64 { return s.inFlight.Load() }

// ServeHTTP answers one request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Metrics returns the handler of /metrics, for programs that expose
// metrics on another port as well.
func (s *Service) Metrics() http.Handler { return s.metrics.handler() }

// routes builds the route table and wraps it in the middleware, outermost
// first: request id, logging and metrics; panic recovery; CORS; draining;
// authentication.
func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		mux.Handle(rt.method+" "+rt.path, rt.h)
	}
	var h http.Handler = jsonMuxErrors(mux)
	h = s.auth(h)
	h = s.refuseWhileDraining(h)
	h = s.cors.wrap(h)
	h = recoverPanics(h)
	return s.observe(named(mux, h))
}

// route is one entry of the route table; openapi_test.go checks the table
// against openapi.json.
type route struct {
	method, path string
	h            http.HandlerFunc
}

func (s *Service) routeTable() []route {
	return []route{
		{"POST", "/v1/predict", s.predict},
		{"GET", "/healthz", s.healthz},
		{"GET", "/readyz", s.readyz},
		{"GET", "/metrics", s.metrics.handler().ServeHTTP},
		{"GET", "/openapi.json", serveOpenAPI},
		{"GET", "/{$}", servePage},
	}
}

// status is the JSON body of /healthz and /readyz.
type status struct {
	Status string `json:"status"`
}

func (s *Service) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, status{"ok"})
}

func (s *Service) readyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.draining.Load():
		w.Header().Set("Retry-After", "1") // as the other 503s: another replica will answer
		writeError(w, r, apiError{status: http.StatusServiceUnavailable, msg: "not ready: the service is shutting down"})
	case s.analyzer.Load() == nil:
		w.Header().Set("Retry-After", "5")
		writeError(w, r, apiError{status: http.StatusServiceUnavailable, msg: "not ready: the models are still loading"})
	default:
		writeJSON(w, http.StatusOK, status{"ready"})
	}
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}

func servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; media-src blob: mediastream:; connect-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(page)
}

// predict answers POST /v1/predict.
func (s *Service) predict(w http.ResponseWriter, r *http.Request) {
	annotate := false
	if v := r.URL.Query().Get("annotate"); v != "" {
		switch v {
		case "1", "true":
			annotate = true
		case "0", "false":
		default:
			writeError(w, r, apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("query parameter annotate=%q: want 1 or true (also send the photo with the faces drawn) or 0 or false", v)})
			return
		}
	}
	ref := s.analyzer.Load()
	if ref == nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, r, apiError{status: http.StatusServiceUnavailable, msg: "the models are still loading; retry in a few seconds"})
		return
	}
	// Wait for a slot: a burst is absorbed, a sustained overload is told
	// to come back rather than piling up requests in memory.
	s.metrics.queue.Inc()
	timer := time.NewTimer(s.cfg.QueueTimeout)
	select {
	case s.sem <- struct{}{}:
		s.metrics.queue.Dec()
		timer.Stop()
		defer func() { <-s.sem }()
	case <-timer.C:
		s.metrics.queue.Dec()
		w.Header().Set("Retry-After", "1")
		writeError(w, r, apiError{status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("server busy: no analysis slot came free within %v; retry shortly", s.cfg.QueueTimeout)})
		return
	case <-r.Context().Done():
		s.metrics.queue.Dec()
		timer.Stop()
		infoOf(r).reason = "client went away while queued"
		return
	}
	start := time.Now()
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	body, aerr := readImage(r, s.cfg.MaxBodyBytes)
	if aerr != nil {
		writeError(w, r, *aerr)
		return
	}
	res, err := ref.a.AnalyzeReader(r.Context(), bytes.NewReader(body))
	if err != nil {
		s.analysisError(w, r, err)
		return
	}
	infoOf(r).faces = len(res.Faces)
	s.metrics.faces.Add(float64(len(res.Faces)))
	resp := Response{Result: *res}
	if resp.Faces == nil {
		resp.Faces = []agegender.Face{}
	}
	if annotate {
		var buf bytes.Buffer
		if err := png.Encode(&buf, res.Annotate()); err != nil {
			writeError(w, r, apiError{status: http.StatusInternalServerError, msg: "encoding the annotated image: " + err.Error()})
			return
		}
		resp.Annotated = "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	resp.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, resp)
}

// analysisError answers a failed analysis: 413 for a photo too large to
// decode, 400 for one that is no usable image, nothing for a client that
// went away, 500 for the rest.
func (s *Service) analysisError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, agegender.ErrTooLarge):
		writeError(w, r, apiError{status: http.StatusRequestEntityTooLarge, msg: err.Error() + "; send a smaller image"})
	case errors.Is(err, agegender.ErrEmptyImage), errors.Is(err, agegender.ErrNotImage),
		errors.Is(err, agegender.ErrUnsupportedFormat), errors.Is(err, agegender.ErrCorruptImage):
		msg := "cannot use the image: " + err.Error()
		if !strings.Contains(msg, "send") {
			msg += "; send a JPEG, PNG, GIF, BMP or WebP image"
		}
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
			// curl -d @photo.jpg sends the file as a form, without its
			// line-break bytes, so the image arrives damaged.
			msg += `; with curl, send a file with --data-binary @photo.jpg (-d drops its line breaks and sends it as a form)`
		}
		writeError(w, r, apiError{status: http.StatusBadRequest, msg: msg})
	case r.Context().Err() != nil:
		infoOf(r).reason = "client went away during the analysis"
	default:
		writeError(w, r, apiError{status: http.StatusInternalServerError, msg: "analysis failed: " + err.Error()})
	}
}
