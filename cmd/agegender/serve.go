package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/serve"
	"github.com/gomlx/compute"
)

// originList is a repeatable string flag.
type originList []string

func (l *originList) String() string     { return strings.Join(*l, ",") }
func (l *originList) Set(v string) error { *l = append(*l, v); return nil }

// cmdServe runs the HTTP service until SIGINT or SIGTERM (ctx), then
// drains it: requests in flight finish, new ones get 503. It listens at
// once and loads the models meanwhile (/readyz says when they are loaded).
func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "`host:port` to listen on; use :8080 to accept connections from other machines")
	token := fs.String("token", os.Getenv("AGEGENDER_TOKEN"), "require \"Authorization: Bearer `TOKEN`\" on /v1/ (default $AGEGENDER_TOKEN)")
	var af analyzerFlags
	af.register(fs)
	maxBody := fs.Int64("max-body", serve.DefaultMaxBodyBytes>>20, "largest request body, in `MiB`")
	maxConc := fs.Int("max-concurrent", runtime.NumCPU(), "images analysed at once; more requests wait (see --queue-timeout), then get 503")
	logJSON := fs.Bool("log-json", false, "log JSON records instead of text")
	queue := fs.Duration("queue-timeout", serve.DefaultQueueTimeout, "how long a request waits for a free slot before it gets 503")
	drainDelay := fs.Duration("drain-delay", 0, "on SIGTERM, answer 503 and fail /readyz for at least this long before closing, so a load balancer notices")
	var origins originList
	fs.Var(&origins, "cors-origin", "let pages from this `origin` (https://host[:port], or * for any) call the API from a browser; repeatable. Default: CORS off")
	parse(fs, args)
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q; all settings are flags", fs.Args())
	}
	opts, err := af.options(fs, *maxBody<<20)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	var log *slog.Logger
	if *logJSON {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	} else {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	backendName := af.backend
	if backendName == "" {
		backendName = os.Getenv(compute.ConfigEnvVar)
	}
	if backendName == "" {
		var note string
		backendName, note = backend.Default()
		if note != "" {
			log.Warn(note)
		}
	}
	s, err := serve.New(nil, serve.Config{
		Token: *token, MaxBodyBytes: *maxBody << 20,
		MaxConcurrent: *maxConc, QueueTimeout: *queue, CORSOrigins: origins, DrainDelay: *drainDelay, Logger: log,
		Model: serve.ModelInfo{Backend: backendName, Detector: af.detector, GenderModel: orBuiltin(firstOf(af.model, af.genderModel)), AgeModel: orBuiltin(firstOf(af.model, af.ageModel)), TenCrop: af.tenCrop},
	})
	if err != nil {
		return fmt.Errorf("%w (flag --cors-origin)", err)
	}

	// Listen first, so that a bad or busy address fails before anything
	// loads (or logs "ready"); then load the models while listening:
	// /healthz answers at once, /readyz once they are loaded. A failed
	// load stops the server.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w; choose another --addr (host:port)", err)
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	loaded := make(chan *agegender.Analyzer, 1)
	go func() {
		start := time.Now()
		a, err := agegender.New(opts)
		loaded <- a
		if err != nil {
			stop(fmt.Errorf("loading the models: %w", err))
			return
		}
		s.SetAnalyzer(a)
		log.Info("ready", "backend", backendName, "load_ms", time.Since(start).Milliseconds())
	}()
	err = serve.Run(ctx, serve.NewServer(*addr, s), ln, func(addr string) {
		log.Info("listening", "url", "http://"+addr+"/", "auth", *token != "", "cors", origins.String())
	})
	if a := <-loaded; a != nil {
		a.Close()
	}
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}

// firstOf returns a if it is set, else b.
func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orBuiltin(path string) string {
	if path == "" {
		return "builtin"
	}
	return path
}
