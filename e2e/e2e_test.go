// Package e2e tests the web page of agegender serve in a real browser:
// headless Chromium driven through the DevTools protocol (chromedp).
package e2e

import (
	"context"
	"github.com/agegender/agegender/internal/datatest"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/internal/testmodel"
	"github.com/agegender/agegender/serve"
	"github.com/chromedp/chromedp"
)

const chromium = "/usr/bin/chromium"

// utkFace is a real adult face from the shared UTKFace folder.
func utkFace(t *testing.T) string { return datatest.UTKFace(t) }

// TestPageShowsFaces opens the page, picks a face photo in the file input,
// and checks that the result table shows at least one face with a gender
// and an age group, and that the canvas shows the photo.
func TestPageShowsFaces(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found: install it (apt-get install chromium) to run the browser test", chromium)
	}
	photo := utkFace(t)
	g, a, err := testmodel.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	an, err := agegender.New(agegender.Options{GenderModel: g, AgeModel: a})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	svc, err := serve.New(an, serve.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	err = chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitReady(chromedp.ID("file")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{photo}),
		chromedp.WaitVisible(chromedp.CSS("#faces td.gender")),
	)
	if err != nil {
		var status string
		status, _ = chromedp.Run(bctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("browser: %v (page status: %q)", err, status)
	}
	text := func(sel string) string {
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	count, gender, age, status := text("#count"), text("#faces td.gender"), text("#faces td.age-group"), text("#status")
	canvasW, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.getElementById("canvas").width`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status %q; count %q; gender %q; age %q; canvas width %d", status, count, gender, age, canvasW)
	if n, err := strconv.Atoi(strings.TrimSpace(count)); err != nil || n < 1 {
		t.Errorf("page shows %q faces, want at least 1", count)
	}
	if g := strings.TrimSpace(gender); g != "m" && g != "f" {
		t.Errorf("gender cell %q, want m or f", gender)
	}
	known := map[string]bool{"0-2": true, "4-6": true, "8-12": true, "15-20": true, "25-32": true, "38-43": true, "48-53": true, "60-100": true}
	if !known[strings.TrimSpace(age)] {
		t.Errorf("age group cell %q is not an age group", age)
	}
	if canvasW != 200 {
		t.Errorf("canvas width %d, want the photo's 200 px", canvasW)
	}
}
