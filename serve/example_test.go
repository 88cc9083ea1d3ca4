package serve_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/serve"
)

// The service listens at once and becomes ready when the models are
// loaded; SIGTERM drains it.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := serve.New(nil, serve.Config{CORSOrigins: []string{"https://app.example.com"}})
	if err != nil {
		log.Fatal(err) // a malformed Config
	}
	loaded := make(chan *agegender.Analyzer, 1)
	go func() {
		a, err := agegender.New(agegender.Options{})
		if err != nil {
			log.Fatal(err)
		}
		s.SetAnalyzer(a) // /readyz turns 200
		loaded <- a
	}()
	if err := serve.Run(ctx, serve.NewServer("127.0.0.1:8080", s), nil, nil); err != nil {
		log.Fatal(err)
	}
	(<-loaded).Close()
}
