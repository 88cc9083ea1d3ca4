package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
)

// spec is openapi.json, parsed.
type spec map[string]any

func loadSpec(t testing.TB) spec {
	t.Helper()
	var s spec
	if err := json.Unmarshal(OpenAPI(), &s); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return s
}

// get walks a JSON pointer like "#/components/schemas/Face".
func (s spec) get(ref string) map[string]any {
	var cur any = map[string]any(s)
	for _, k := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, _ := cur.(map[string]any)
		cur = m[strings.ReplaceAll(strings.ReplaceAll(k, "~1", "/"), "~0", "~")]
	}
	m, _ := cur.(map[string]any)
	return m
}

func (s spec) deref(m map[string]any) map[string]any {
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		m = s.get(ref)
	}
	return m
}

// operation returns the spec's operation for method and path, or nil.
func (s spec) operation(method, path string) map[string]any {
	paths, _ := s["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// response returns the documented response of an operation for a status.
func (s spec) response(op map[string]any, status int) map[string]any {
	rs, _ := op["responses"].(map[string]any)
	r, _ := rs[strconv.Itoa(status)].(map[string]any)
	return s.deref(r)
}

// validate checks v against a JSON Schema subset (type, properties,
// required, additionalProperties, items, minItems, maxItems, minimum,
// maximum, enum, $ref), the subset openapi.json uses; it returns what does
// not match.
func (s spec) validate(schema map[string]any, v any, at string) []string {
	schema = s.deref(schema)
	if schema == nil {
		return []string{at + ": no schema"}
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if typ, ok := schema["type"].(string); ok {
		okType := false
		switch x := v.(type) {
		case map[string]any:
			okType = typ == "object"
		case []any:
			okType = typ == "array"
		case string:
			okType = typ == "string"
		case bool:
			okType = typ == "boolean"
		case float64:
			okType = typ == "number" || typ == "integer" && x == math.Trunc(x)
		case nil:
			okType = typ == "null"
		}
		if !okType {
			bad("%v is not of type %s", v, typ)
			return errs
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		bad("%v is not one of %v", v, enum)
	}
	if x, ok := v.(float64); ok {
		if min, ok := schema["minimum"].(float64); ok && x < min {
			bad("%v < minimum %v", x, min)
		}
		if max, ok := schema["maximum"].(float64); ok && x > max {
			bad("%v > maximum %v", x, max)
		}
	}
	if arr, ok := v.([]any); ok {
		if n, ok := schema["minItems"].(float64); ok && float64(len(arr)) < n {
			bad("%d items, fewer than %v", len(arr), n)
		}
		if n, ok := schema["maxItems"].(float64); ok && float64(len(arr)) > n {
			bad("%d items, more than %v", len(arr), n)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range arr {
				errs = append(errs, s.validate(items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asStrings(schema["required"]) {
			if _, ok := obj[r]; !ok {
				bad("lacks required %q", r)
			}
		}
		for k, e := range obj {
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, s.validate(p, e, at+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("property %q is not in the schema", k)
				}
			case map[string]any:
				errs = append(errs, s.validate(ap, e, at+"."+k)...)
			}
		}
	}
	return errs
}

func asStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// checkAnswer checks that an answer's status is documented for its
// operation and that a JSON body matches the documented schema.
func (s spec) checkAnswer(t *testing.T, method, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	op := s.operation(method, path)
	if op == nil {
		t.Errorf("%s %s is not in openapi.json", method, path)
		return
	}
	r := s.response(op, rec.Code)
	if r == nil {
		t.Errorf("%s %s answered %d, which openapi.json does not document: %s", method, path, rec.Code, rec.Body)
		return
	}
	content, _ := r["content"].(map[string]any)
	ct := strings.Split(rec.Header().Get("Content-Type"), ";")[0]
	media, ok := content[ct].(map[string]any)
	if !ok {
		t.Errorf("%s %s %d: Content-Type %q not documented (documented: %v)", method, path, rec.Code, ct, keys(content))
		return
	}
	if ct != "application/json" {
		return
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Errorf("%s %s %d: body is not JSON: %v", method, path, rec.Code, err)
		return
	}
	schema, _ := media["schema"].(map[string]any)
	for _, e := range s.validate(schema, v, "body") {
		t.Errorf("%s %s %d: %s", method, path, rec.Code, e)
	}
	for name := range asMap(r["headers"]) {
		if name != "WWW-Authenticate" && name != "Retry-After" && rec.Header().Get(name) == "" {
			t.Errorf("%s %s %d: documented header %s missing", method, path, rec.Code, name)
		}
	}
	if name := "WWW-Authenticate"; rec.Code == 401 && rec.Header().Get(name) == "" {
		t.Errorf("%s %s 401 without %s", method, path, name)
	}
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestOpenAPIRoutes checks that openapi.json describes exactly the
// service's routes and methods.
func TestOpenAPIRoutes(t *testing.T) {
	sp := loadSpec(t)
	if v, _ := sp["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Errorf("openapi version %q, want 3.1.x", v)
	}
	s := newService(t, &fake{faces: oneFace}, Config{})
	want := map[string]bool{}
	for _, rt := range s.routeTable() {
		path := strings.TrimSuffix(rt.path, "{$}")
		want[rt.method+" "+path] = true
		if sp.operation(rt.method, path) == nil {
			t.Errorf("route %s %s is not in openapi.json", rt.method, path)
		}
	}
	for path, item := range asMap(sp["paths"]) {
		for method := range asMap(item) {
			if !want[strings.ToUpper(method)+" "+path] {
				t.Errorf("openapi.json describes %s %s, which the service does not route", strings.ToUpper(method), path)
			}
		}
	}
	// The document served is the one in the repository.
	rec := do(s, "GET", "/openapi.json", nil)
	if rec.Code != 200 || rec.Body.String() != string(OpenAPI()) {
		t.Errorf("GET /openapi.json: %d, body differs from openapi.json", rec.Code)
	}
}

// TestOpenAPIAnswers produces every status of every operation and checks
// each answer against openapi.json: the status is documented, and the body
// matches its schema. It also checks that every documented status was
// produced, so the description lists no answer the service never gives.
func TestOpenAPIAnswers(t *testing.T) {
	sp := loadSpec(t)
	twoFaces := []agegender.Face{oneFace[0], oneFace[0]}
	twoFaces[1].Index = 1
	ok := newService(t, &fake{faces: twoFaces, lim: imageio.Limits{MaxPixels: 100 * 100}}, Config{Token: "t", MaxBodyBytes: 1 << 12})
	auth := []string{"Authorization", "Bearer t"}
	img := pngBytes(t, 40, 30)
	type answer struct {
		name         string
		s            *Service
		method, path string
		body         []byte
		header       []string
	}
	loading := newService(t, nil, Config{})
	draining := newService(t, &fake{}, Config{})
	draining.Drain()
	busy := &fake{faces: oneFace, release: make(chan struct{})}
	busySvc := newService(t, busy, Config{MaxConcurrent: 1, QueueTimeout: time.Millisecond})
	go do(busySvc, "POST", "/v1/predict", img)
	for busySvc.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the first request holds the slot
	defer close(busy.release)
	answers := []answer{
		{"prediction", ok, "POST", "/v1/predict", img, auth},
		{"annotated", ok, "POST", "/v1/predict?annotate=1", img, auth},
		{"no faces", newService(t, &fake{}, Config{}), "POST", "/v1/predict", img, nil},
		{"empty", ok, "POST", "/v1/predict", nil, auth},
		{"no token", ok, "POST", "/v1/predict", img, nil},
		{"too large", ok, "POST", "/v1/predict", make([]byte, 5000), auth},
		{"too many pixels", ok, "POST", "/v1/predict", pngBytes(t, 200, 200), auth},
		{"unsupported type", ok, "POST", "/v1/predict", img, append([]string{"Content-Type", "application/pdf"}, auth...)},
		{"panic", newService(t, &fake{panics: true}, Config{}), "POST", "/v1/predict", img, nil},
		{"loading", loading, "POST", "/v1/predict", img, nil},
		{"busy", busySvc, "POST", "/v1/predict", img, nil},
		{"draining", draining, "POST", "/v1/predict", img, nil},
		{"healthz", ok, "GET", "/healthz", nil, nil},
		{"ready", ok, "GET", "/readyz", nil, nil},
		{"not ready", loading, "GET", "/readyz", nil, nil},
		{"draining readyz", draining, "GET", "/readyz", nil, nil},
		{"metrics", ok, "GET", "/metrics", nil, nil},
		{"openapi", ok, "GET", "/openapi.json", nil, nil},
		{"page", ok, "GET", "/", nil, nil},
	}
	seen := map[string]bool{}
	for _, a := range answers {
		rec := do(a.s, a.method, a.path, a.body, a.header...)
		path, _, _ := strings.Cut(a.path, "?")
		t.Logf("%s: %s %s → %d", a.name, a.method, path, rec.Code)
		sp.checkAnswer(t, a.method, path, rec)
		seen[a.method+" "+path+" "+strconv.Itoa(rec.Code)] = true
	}
	for path, item := range asMap(sp["paths"]) {
		for method, op := range asMap(item) {
			for code := range asMap(asMap(op)["responses"]) {
				if k := strings.ToUpper(method) + " " + path + " " + code; !seen[k] {
					t.Errorf("openapi.json documents %s, which no test produced", k)
				}
			}
		}
	}
}

// TestOpenAPIFaceSchema checks the Face schema against a face with every
// optional field that the library's JSON can hold, so that a new field of
// agegender.Face must be described before the test passes.
func TestOpenAPIFaceSchema(t *testing.T) {
	sp := loadSpec(t)
	b, err := json.Marshal(oneFace[0])
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	json.Unmarshal(b, &v)
	v["age"], v["age_std"] = 31.5, 4.25 // from models that estimate years
	for _, e := range sp.validate(map[string]any{"$ref": "#/components/schemas/Face"}, v, "face") {
		t.Error(e)
	}
	v["colour"] = "blue"
	if errs := sp.validate(map[string]any{"$ref": "#/components/schemas/Face"}, v, "face"); len(errs) == 0 {
		t.Error("the validator accepts a property the schema lacks")
	}
}

// TestOpenAPIMediaTypes checks a rule that JSON Schema validators of the
// OpenAPI 3.1 document enforce and that is easy to break by hand: a Media
// Type Object holds only schema, example, examples and encoding (a
// description belongs in the schema). swagger-cli validate found such
// slips once.
func TestOpenAPIMediaTypes(t *testing.T) {
	sp := loadSpec(t)
	allowed := map[string]bool{"schema": true, "example": true, "examples": true, "encoding": true}
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if content, ok := x["content"].(map[string]any); ok {
				for mt, m := range content {
					for k := range asMap(m) {
						if !allowed[k] && !strings.HasPrefix(k, "x-") {
							t.Errorf("%s/content/%s: field %q is not allowed in a Media Type Object", at, mt, k)
						}
					}
				}
			}
			for k, e := range x {
				walk(at+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s/%d", at, i), e)
			}
		}
	}
	walk("#", map[string]any(sp))
}
