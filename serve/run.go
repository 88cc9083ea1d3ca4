package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// NewServer returns an http.Server for h on addr with timeouts that keep
// slow or idle clients from holding connections: 10 s to send the headers,
// 1 min for the whole request, 2 min to write the answer (analysis on the
// CPU can take seconds, queueing tens of seconds), 2 min idle keep-alive.
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

// ShutdownTimeout is how long Run lets requests in flight finish after
// its context is cancelled.
const ShutdownTimeout = 30 * time.Second

// Run serves srv until ctx is cancelled (for example by SIGINT or SIGTERM,
// see signal.NotifyContext), then ends gracefully:
//
//  1. if srv.Handler is a *Service, it drains (see Service.Drain): new
//     requests get 503 and /readyz says not ready, while the requests in
//     flight finish, for at least Config.DrainDelay;
//  2. the listener closes and srv.Shutdown waits for the rest.
//
// Both steps together take at most ShutdownTimeout; requests still
// running then are cut off and Run returns an error. If ln is nil, Run
// listens on srv.Addr. ready, if not nil, is called with the address
// actually listened on.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, ready func(addr string)) error {
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("serve: %w; choose another address", err)
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
	if s, ok := srv.Handler.(*Service); ok {
		s.Drain()
		s.waitIdle(sctx)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// waitIdle returns once no request is in flight and DrainDelay has
// passed since it was called, or when ctx ends.
func (s *Service) waitIdle(ctx context.Context) {
	delay := time.NewTimer(s.cfg.DrainDelay)
	defer delay.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	delayed := s.cfg.DrainDelay <= 0
	for {
		if delayed && s.inFlight.Load() == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-delay.C:
			delayed = true
		case <-tick.C:
		}
	}
}
