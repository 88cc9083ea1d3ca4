// Package serve is agegender's HTTP service: it answers photos posted to
// it with every face's gender and age group, and serves a web page where a
// person can try it.
//
// Routes:
//
//	POST /v1/predict   the image as the raw body, or as the multipart form
//	                   field "image"; answers JSON (see Response). With
//	                   ?annotate=1 the answer also holds the picture with
//	                   the faces drawn on it, as a PNG data URL.
//	GET  /healthz      "ok" while the server runs; never needs a token.
//	GET  /             the web page (self-contained, no external resources).
//
// The service is stateless and never touches the file system on behalf of
// a request. It bounds what one request can cost (body size, image
// dimensions, a limit on requests analysed at once), recovers from panics
// in handlers, logs every request with log/slog, and, given a token,
// requires "Authorization: Bearer <token>" on /v1/ routes.
//
// A typical program:
//
//	a, _ := agegender.New(agegender.Options{})
//	srv := serve.NewServer("127.0.0.1:8080", serve.NewHandler(a, serve.Config{}))
//	err := serve.Run(ctx, srv) // returns after ctx is cancelled and requests drain
package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
)

// Analyzer is what the service needs from an *agegender.Analyzer. Tests
// substitute their own.
type Analyzer interface {
	Analyze(img image.Image) ([]agegender.Face, error)
}

// Config tunes NewHandler. The zero value is ready to use.
type Config struct {
	// Token, when not empty, is required as "Authorization: Bearer <Token>"
	// on /v1/ routes. The page and /healthz stay open.
	Token string
	// MaxBodyBytes bounds a request body; larger requests get 413.
	// Default 20 MiB.
	MaxBodyBytes int64
	// MaxPixels bounds the width×height of an image; larger ones get 413.
	// Default imageio.DefaultLimits.MaxPixels (50 megapixels).
	MaxPixels int64
	// MaxConcurrent is how many requests are analysed at once. Default:
	// the number of CPUs.
	MaxConcurrent int
	// QueueTimeout is how long a request waits for one of the
	// MaxConcurrent slots before it gets 503. Default 30 seconds: a
	// waiting request has not read its body yet, so waiting costs almost
	// no memory, and a burst of hundreds of clients is served in turn
	// rather than refused (bench/load.sh: 200 connections, no errors).
	QueueTimeout time.Duration
	// Logger receives one record per request. Default slog.Default().
	Logger *slog.Logger
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
	if c.MaxPixels <= 0 {
		c.MaxPixels = imageio.DefaultLimits.MaxPixels
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

// Response is the JSON answer of POST /v1/predict.
type Response struct {
	// Faces are the faces found, most confident first; each is an object
	// with "face", "box" ([x, y, width, height]), "gender", "gender_prob",
	// "age_group", "age_probs" and "detection_score" (see agegender.Face).
	Faces []agegender.Face `json:"faces"`
	// Width and Height are the image's, after EXIF orientation.
	Width  int `json:"width"`
	Height int `json:"height"`
	// ElapsedMS is the time spent decoding and analysing, in milliseconds.
	ElapsedMS float64 `json:"elapsed_ms"`
	// Annotated is the image with boxes and labels drawn, as a
	// "data:image/png;base64,..." URL; only with ?annotate=1.
	Annotated string `json:"annotated,omitempty"`
}

// errorResponse is the JSON body of every error answer.
type errorResponse struct {
	Error string `json:"error"`
}

//go:embed page.html
var page []byte

// handler holds a service's configuration; it has no mutable state
// beyond the semaphore.
type handler struct {
	a   Analyzer
	cfg Config
	sem chan struct{}
}

// NewHandler returns the service's routes, wrapped in logging, panic
// recovery and (with cfg.Token) authentication.
func NewHandler(a Analyzer, cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	h := &handler{a: a, cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/predict", h.predict)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(page)
	})
	return logRequests(cfg.Logger, recoverPanics(cfg.Logger, h.auth(mux)))
}

// auth requires the bearer token on /v1/ routes when one is configured.
func (h *handler) auth(next http.Handler) http.Handler {
	if h.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + h.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agegender"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong token: send the header \"Authorization: Bearer <token>\"")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// predict answers POST /v1/predict.
func (h *handler) predict(w http.ResponseWriter, r *http.Request) {
	// Wait briefly for a slot: a burst is absorbed, a sustained overload
	// is told to come back rather than piling up requests in memory.
	timer := time.NewTimer(h.cfg.QueueTimeout)
	select {
	case h.sem <- struct{}{}:
		timer.Stop()
		defer func() { <-h.sem }()
	case <-timer.C:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "server busy: too many images being analysed; retry shortly")
		return
	case <-r.Context().Done():
		timer.Stop()
		return
	}
	start := time.Now()
	body, status, err := readImage(w, r, h.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	img, _, err := imageio.Decode(bytes.NewReader(body), imageio.Limits{MaxPixels: h.cfg.MaxPixels, MaxBytes: h.cfg.MaxBodyBytes})
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, imageio.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, "cannot use the image: "+err.Error())
		return
	}
	faces, err := h.a.Analyze(img)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "analysis failed: "+err.Error())
		return
	}
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		info.faces = len(faces)
	}
	b := img.Bounds()
	resp := Response{Faces: faces, Width: b.Dx(), Height: b.Dy()}
	if resp.Faces == nil {
		resp.Faces = []agegender.Face{}
	}
	if v := r.URL.Query().Get("annotate"); v == "1" || v == "true" {
		var buf bytes.Buffer
		if err := png.Encode(&buf, agegender.Annotate(img, faces)); err != nil {
			writeError(w, http.StatusInternalServerError, "encoding the annotated image: "+err.Error())
			return
		}
		resp.Annotated = "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	resp.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, resp)
}

// readImage returns the encoded image of a request: the multipart field
// "image", or else the whole body. On error it also returns the status.
func readImage(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var src io.Reader = r.Body
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("malformed multipart body: %v", err)
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil, http.StatusBadRequest, errors.New(`multipart body has no field "image": name the file field "image"`)
			}
			if err != nil {
				return nil, statusOf(err), fmt.Errorf("reading the multipart body: %w", err)
			}
			if p.FormName() == "image" {
				src = p
				break
			}
		}
	}
	b, err := io.ReadAll(src)
	if err != nil {
		return nil, statusOf(err), fmt.Errorf("reading the image: %w", err)
	}
	if len(b) == 0 {
		return nil, http.StatusBadRequest, errors.New(`empty image: send it as the request body or as the multipart field "image"`)
	}
	return b, 0, nil
}

// statusOf is 413 for a body over the limit, else 400.
func statusOf(err error) int {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorResponse{Error: msg})
}

// requestInfo collects what the log record of a request reports.
type requestInfo struct {
	status int
	faces  int
}

type infoKey struct{}

// recorder remembers the status a handler writes.
type recorder struct {
	http.ResponseWriter
	info *requestInfo
}

func (r *recorder) WriteHeader(code int) {
	if r.info.status == 0 {
		r.info.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.info.status == 0 {
		r.info.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests logs one record per request: method, path, status,
// duration and, for predictions, the number of faces.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{faces: -1}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		next.ServeHTTP(&recorder{ResponseWriter: w, info: info}, r)
		attrs := []any{
			"method", r.Method, "path", r.URL.Path, "status", info.status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "remote", r.RemoteAddr,
		}
		if info.faces >= 0 {
			attrs = append(attrs, "faces", info.faces)
		}
		log.Info("request", attrs...)
	})
}

// recoverPanics turns a panic in a handler into a 500 answer and a log
// record, and keeps the server running.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p) // the handler's way of aborting the response
			}
			buf := make([]byte, 4<<10)
			buf = buf[:runtime.Stack(buf, false)]
			log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(buf))
			writeError(w, http.StatusInternalServerError, "internal error; the server logged the details")
		}()
		next.ServeHTTP(w, r)
	})
}

// NewServer returns an http.Server for h on addr with timeouts that keep
// slow or idle clients from holding connections: 10 s to send the headers,
// 1 min for the whole request, 2 min to write the answer (analysis on the
// CPU can take seconds), 2 min idle keep-alive.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// ShutdownTimeout is how long Run lets requests in progress finish after
// its context is cancelled.
const ShutdownTimeout = 30 * time.Second

// Run serves srv until ctx is cancelled (for example by SIGINT or SIGTERM,
// see signal.NotifyContext), then shuts it down gracefully: it stops
// accepting connections and waits up to ShutdownTimeout for requests in
// progress. If ln is nil, Run listens on srv.Addr. ready, if not nil, is
// called with the address actually listened on.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, ready func(addr string)) error {
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("serve: %w; choose another --addr", err)
		}
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
