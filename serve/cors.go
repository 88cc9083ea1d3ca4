package serve

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// corsPolicy answers cross-origin requests from browsers (CORS) for the
// origins it allows. The zero value allows none and adds no headers.
type corsPolicy struct {
	any     bool            // "*": every origin
	origins map[string]bool // scheme://host[:port], lower case
}

// newCORS checks and normalises origins: each is "*" or an http(s) origin
// like "https://example.com:8443", without a path.
func newCORS(origins []string) (corsPolicy, error) {
	var c corsPolicy
	for _, o := range origins {
		if o == "*" {
			c.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return corsPolicy{}, fmt.Errorf("serve: CORS origin %q is neither \"*\" nor scheme://host[:port] (for example https://example.com)", o)
		}
		if c.origins == nil {
			c.origins = map[string]bool{}
		}
		c.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return c, nil
}

func (c corsPolicy) enabled() bool { return c.any || len(c.origins) > 0 }

// CORS answers: the methods and request headers a page may use, and the
// response headers its scripts may read.
const (
	corsMethods = "GET, POST, OPTIONS"
	corsHeaders = "Authorization, Content-Type, X-Request-ID"
	corsExpose  = "X-Request-ID, Retry-After, WWW-Authenticate"
	corsMaxAge  = "600" // seconds a browser may cache a preflight answer
)

// wrap adds CORS headers for allowed origins and answers preflight
// requests (OPTIONS with Access-Control-Request-Method) itself: 204 for
// an allowed origin, 403 for another. Without any allowed origin it adds
// nothing, so preflights reach the routes and get 405.
func (c corsPolicy) wrap(next http.Handler) http.Handler {
	if !c.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !c.any && !c.origins[strings.ToLower(origin)] {
			if preflight {
				infoOf(r).route = "CORS preflight"
				writeError(w, r, apiError{status: http.StatusForbidden, msg: fmt.Sprintf("origin %q may not call this API: the server allows only the origins it was configured with", origin)})
				return
			}
			next.ServeHTTP(w, r) // no CORS headers: the browser hides the answer
			return
		}
		if c.any {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if preflight {
			infoOf(r).route = "CORS preflight"
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExpose)
		next.ServeHTTP(w, r)
	})
}
