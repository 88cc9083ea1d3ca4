package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// apiError is an error answer: the status, the message for the client
// (which also goes to the log) and, for a 413, the limit that was passed.
type apiError struct {
	status   int
	msg      string
	maxBytes int64
}

// errorBody is the JSON body of every error answer (schema "Error" in
// openapi.json).
type errorBody struct {
	Error     string `json:"error"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id,omitempty"`
	// MaxBytes states the limit a 413 for the body refers to.
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages quote "<token>"; answers are never HTML
	enc.Encode(v)
}

// writeError answers e as JSON and notes its message as the reason the
// request was rejected, for the log record.
func writeError(w http.ResponseWriter, r *http.Request, e apiError) {
	info := infoOf(r)
	info.reason = e.msg
	writeJSON(w, e.status, errorBody{Error: e.msg, Status: e.status, RequestID: info.id, MaxBytes: e.maxBytes})
}

// requestInfo collects what the log record and the metrics of a request
// report. The outermost middleware puts it in the request's context.
type requestInfo struct {
	id     string // request id
	route  string // the route pattern matched, "" if none
	status int
	faces  int    // faces found, -1 when not a prediction
	reason string // why the request was rejected or failed
}

type infoKey struct{}

// infoOf returns the request's info, or a throwaway one for a request
// that did not pass through the service's middleware.
func infoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{faces: -1}
}

// named records the route pattern mux matches for a request before the
// middleware runs, so that a request refused before it reaches its
// handler (draining, authentication) is still counted under its route.
func named(mux *http.ServeMux, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			infoOf(r).route = pattern
		}
		h.ServeHTTP(w, r)
	})
}

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

// maxRequestIDLen bounds a client's X-Request-ID; longer ones are replaced.
const maxRequestIDLen = 128

// requestID returns the client's X-Request-ID if it is 1 to 128 visible
// ASCII characters without quotes or backslashes, else a new random id
// (32 hex digits).
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-ID"); id != "" && len(id) <= maxRequestIDLen {
		ok := true
		for i := 0; i < len(id) && ok; i++ {
			c := id[i]
			ok = c > ' ' && c < 0x7f && c != '"' && c != '\\'
		}
		if ok {
			return id
		}
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe gives each request an id (X-Request-ID, answered back), counts
// it in the metrics and logs one record when it ends: id, method, path,
// route, status, duration and, for rejected requests, the reason. 2xx and
// 3xx log at Info, 4xx and 503 (loading, busy, draining: expected) at
// Warn, other 5xx at Error.
func (s *Service) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.inFlight.Add(1)
		s.metrics.inFlight.Inc()
		defer func() {
			s.metrics.inFlight.Dec()
			s.inFlight.Add(-1)
		}()
		info := &requestInfo{id: requestID(r), faces: -1}
		w.Header().Set("X-Request-ID", info.id)
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		defer func() {
			d := time.Since(start)
			if info.status == 0 {
				info.status = http.StatusOK // nothing written: net/http answers 200
			}
			route := info.route
			if route == "" {
				route = "unmatched"
			}
			s.metrics.observe(route, r.Method, info.status, d)
			attrs := []any{
				"request_id", info.id, "method", r.Method, "path", r.URL.Path, "route", route,
				"status", info.status, "duration_ms", float64(d.Microseconds()) / 1000, "remote", r.RemoteAddr,
			}
			if info.faces >= 0 {
				attrs = append(attrs, "faces", info.faces)
			}
			level := slog.LevelInfo
			switch {
			case info.status >= 500 && info.status != http.StatusServiceUnavailable:
				level = slog.LevelError
			case info.status >= 400:
				level = slog.LevelWarn
			}
			if info.reason != "" {
				attrs = append(attrs, "reason", info.reason)
			}
			s.cfg.Logger.Log(r.Context(), level, "request", attrs...)
		}()
		next.ServeHTTP(&recorder{ResponseWriter: w, info: info}, r)
	})
}

// recoverPanics turns a panic in a handler into a 500 answer and a log
// record (with the stack), and keeps the server running.
func recoverPanics(next http.Handler) http.Handler {
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
			writeError(w, r, apiError{status: http.StatusInternalServerError, msg: "internal error; the server logged the details"})
			infoOf(r).reason = fmt.Sprintf("panic: %v\n%s", p, buf)
		}()
		next.ServeHTTP(w, r)
	})
}

// auth requires the bearer token on /v1/ routes when one is configured.
// A 401 carries WWW-Authenticate as RFC 6750 describes.
func (s *Service) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), want) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		if got == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agegender"`)
			writeError(w, r, apiError{status: http.StatusUnauthorized, msg: `missing token: send the header "Authorization: Bearer <token>"`})
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="agegender", error="invalid_token"`)
		writeError(w, r, apiError{status: http.StatusUnauthorized, msg: `wrong token: send the header "Authorization: Bearer <token>" with the token the server was given`})
	})
}

// refuseWhileDraining answers 503 to new requests once Drain was called,
// except the health, readiness and metrics routes.
func (s *Service) refuseWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
			default:
				w.Header().Set("Connection", "close")
				w.Header().Set("Retry-After", "1")
				writeError(w, r, apiError{status: http.StatusServiceUnavailable, msg: "the server is shutting down; retry, another replica will answer"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// jsonMuxErrors turns the plain-text 404 and 405 answers of the ServeMux
// (for requests no route matched) into JSON error answers.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w, r: r}, r)
	})
}

// muxErrorWriter replaces the body of an error the ServeMux itself writes.
type muxErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (m *muxErrorWriter) WriteHeader(code int) {
	info := infoOf(m.r)
	if info.route != "" || code < 400 || m.swallow {
		m.ResponseWriter.WriteHeader(code)
		return
	}
	var msg string
	switch code {
	case http.StatusNotFound:
		msg = fmt.Sprintf("no such path %s: the API is described at /openapi.json", unmatchedPath(m.r))
	case http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("method %s is not allowed on %s; allowed: %s", m.r.Method, unmatchedPath(m.r), m.Header().Get("Allow"))
	default:
		msg = http.StatusText(code)
	}
	m.swallow = true
	writeError(m.ResponseWriter, m.r, apiError{status: code, msg: msg})
}

func (m *muxErrorWriter) Write(b []byte) (int, error) {
	if m.swallow {
		return len(b), nil
	}
	return m.ResponseWriter.Write(b)
}

func (m *muxErrorWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// unmatchedPath is a request's path for an error message, escaped so that
// it cannot carry control characters into a log or a page.
func unmatchedPath(r *http.Request) string { return (&url.URL{Path: r.URL.Path}).EscapedPath() }
