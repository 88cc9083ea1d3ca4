package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address that nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls url until it answers want, for up to d.
func waitFor(t *testing.T, url string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d within %v (last: %v %v)", url, want, d, res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeSIGTERM runs the serve command, waits until it is ready,
// analyses a photo, then sends the process SIGTERM (as an orchestrator
// does) and checks that the command stops cleanly.
func TestServeSIGTERM(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() { done <- cmdServe(ctx, append([]string{"--addr", addr}, testModels(t)...)) }()
	url := "http://" + addr
	waitFor(t, url+"/healthz", 200, 30*time.Second)
	waitFor(t, url+"/readyz", 200, 60*time.Second)
	photo, err := os.ReadFile("../../testdata/face.jpg")
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(url+"/v1/predict", "image/jpeg", bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Request-ID") == "" {
		t.Errorf("predict: %d, X-Request-ID %q", res.StatusCode, res.Header.Get("X-Request-ID"))
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop within 40 s of SIGTERM")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("still answering after SIGTERM")
	}
}

// TestServeLoadFailure: a model that cannot be loaded stops the command
// with an error that says so, although it was already listening.
func TestServeLoadFailure(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		done <- cmdServe(context.Background(), []string{"--addr", freeAddr(t), "--gender-model", "/nonexistent/gender.agm"})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "loading the models") || !strings.Contains(err.Error(), "/nonexistent/gender.agm") {
			t.Errorf("error %v, want one about loading /nonexistent/gender.agm", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve kept running with a model it cannot load")
	}
}

func TestServeBadCORSOrigin(t *testing.T) {
	err := cmdServe(context.Background(), []string{"--addr", freeAddr(t), "--cors-origin", "example.com"})
	if err == nil || !strings.Contains(err.Error(), "--cors-origin") {
		t.Errorf("error %v, want one naming --cors-origin", err)
	}
}
