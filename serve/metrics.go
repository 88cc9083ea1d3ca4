package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a service's Prometheus metrics, in a registry of its own
// (so two services in one process, as in tests, do not collide):
//
//	agegender_http_requests_total{route,method,code}     counter
//	agegender_http_request_duration_seconds{route}       histogram
//	agegender_http_requests_in_flight                    gauge
//	agegender_queue_depth                                gauge: predictions waiting for an analysis slot
//	agegender_faces_analysed_total                       counter
//	agegender_ready                                      gauge: 1 when /readyz answers 200
//	agegender_model_info{backend,detector,gender_model,age_model,tencrop}  gauge, always 1
//
// plus the Go runtime (go_*) and process (process_*) collectors.
// route is the matched pattern, like "POST /v1/predict", or "unmatched".
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	queue    prometheus.Gauge
	faces    prometheus.Counter
	ready    prometheus.Gauge
}

// latencyBuckets span a cached 404 (under 1 ms) to a prediction that
// queued behind hundreds of others (tens of seconds), in seconds.
var latencyBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics(m ModelInfo) *metrics {
	reg := prometheus.NewRegistry()
	x := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agegender_http_requests_total", Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "agegender_http_request_duration_seconds", Help: "Time from a request's arrival to the end of its answer, queueing included, by route pattern.",
			Buckets: latencyBuckets,
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agegender_http_requests_in_flight", Help: "Requests being handled now.",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agegender_queue_depth", Help: "Predictions waiting for a free analysis slot.",
		}),
		faces: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agegender_faces_analysed_total", Help: "Faces found and analysed.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agegender_ready", Help: "1 when the models are loaded and the service is not draining, else 0.",
		}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "agegender_model_info", Help: "The models and compute backend in use (always 1).",
		ConstLabels: prometheus.Labels{
			"backend": orUnknown(m.Backend), "detector": orUnknown(m.Detector), "gender_model": orUnknown(m.GenderModel),
			"age_model": orUnknown(m.AgeModel), "tencrop": strconv.FormatBool(m.TenCrop),
		},
	})
	info.Set(1)
	reg.MustRegister(x.requests, x.duration, x.inFlight, x.queue, x.faces, x.ready, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return x
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// observe counts one answered request.
func (m *metrics) observe(route, method string, code int, d time.Duration) {
	if !knownMethod(method) {
		method = "other" // bound the label's values
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func knownMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
