// Package e2e tests the web page of agegender serve in a real browser:
// headless Chromium driven through the DevTools protocol (chromedp), at a
// phone's width (390 px) and a laptop's (1280 px).
//
// Set E2E_SCREENSHOTS=DIR to keep the screenshots (page-390.png,
// page-1280.png); otherwise they go to the test's temporary folder.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/internal/testmodel"
	"github.com/agegender/agegender/serve"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const chromium = "/usr/bin/chromium"

// groupPhoto writes a photo of n UTKFace faces side by side, 200 px each,
// on a grey border, to dir, and returns its path: a wide group photo that
// a phone shows at a third of its size.
func groupPhoto(t *testing.T, dir string, n int) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(datatest.SharedDir(t, "utkface/images"), "3[0-5]_*_0_*.jpg"))
	if len(names) < n {
		datatest.Missing(t, "fewer than %d UTKFace faces aged 30-35", n)
	}
	sort.Strings(names)
	const side, pad = 200, 40
	dst := image.NewRGBA(image.Rect(0, 0, n*side+(n+1)*pad, side+2*pad))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.Gray{200}), image.Point{}, draw.Src)
	for i := range n {
		face, _, err := imageio.DecodeFile(names[i*37%len(names)], imageio.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		at := image.Pt(pad+i*(side+pad), pad)
		draw.Draw(dst, image.Rectangle{Min: at, Max: at.Add(image.Pt(side, side))}, face, face.Bounds().Min, draw.Src)
	}
	path := filepath.Join(dir, "group.jpg")
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withAge adds "age" and "age_std" to every face of a /v1/predict answer
// that lacks them, so that the page's display of years is tested whether
// or not the models in use estimate an age.
func withAge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/predict" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var resp map[string]any
		if rec.Code == 200 && json.Unmarshal(body, &resp) == nil {
			faces, _ := resp["faces"].([]any)
			for _, f := range faces {
				if m, ok := f.(map[string]any); ok && m["age"] == nil {
					m["age"], m["age_std"] = 31.4, 4.6
				}
			}
			body, _ = json.Marshal(resp)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

// browser starts headless Chromium with a fake camera that needs no
// permission prompt, and returns its context.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
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
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	return bctx
}

// TestPage drives the page as a person would, at 390 and 1280 px: picks a
// group photo from the keyboard, checks the boxes, labels, table, JSON
// view and layout, takes a screenshot, sends a broken file and checks that
// the old result is gone, then takes a camera snapshot.
func TestPage(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found: install it (apt-get install chromium) to run the browser test", chromium)
	}
	shots := os.Getenv("E2E_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	dir := t.TempDir()
	photo := groupPhoto(t, dir, 4)
	broken := filepath.Join(dir, "broken.jpg")
	os.WriteFile(broken, []byte("this is not a photo"), 0o644)

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
	srv := httptest.NewServer(withAge(svc))
	defer srv.Close()

	for _, width := range []int{390, 1280} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			bctx := browser(t, ctx)
			checkPage(t, bctx, srv.URL, width, photo, broken, filepath.Join(shots, fmt.Sprintf("page-%d.png", width)))
		})
	}
}

func checkPage(t *testing.T, bctx context.Context, url string, width int, photo, broken, shot string) {
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			s, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("status")))
			t.Fatalf("%s: %v (page status: %q)", what, err, s)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	evalBool := func(js string) bool {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	evalNum := func(js string) float64 {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[float64](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	do("open the page", chromedp.EmulateViewport(int64(width), 800), chromedp.Navigate(url+"/"), chromedp.WaitReady(chromedp.ID("pick")))

	// Keyboard: the first Tab lands on "Choose a photo", and Enter opens
	// the file chooser.
	if _, err := chromedp.Call(bctx, page.SetInterceptFileChooserDialog, page.SetInterceptFileChooserDialogParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	do("press Tab", chromedp.KeyEvent("\t"))
	if id, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.activeElement.id`)); id != "pick" {
		t.Errorf("first Tab lands on %q, want the photo button #pick", id)
	}
	wctx, cancel := context.WithTimeout(bctx, 10*time.Second)
	if _, err := chromedp.Run(wctx, chromedp.WaitEvent(page.FileChooserOpened, nil, chromedp.KeyEvent("\r"))); err != nil {
		t.Errorf("Enter on #pick did not open the file chooser: %v", err)
	}
	cancel()
	if _, err := chromedp.Call(bctx, page.SetInterceptFileChooserDialog, page.SetInterceptFileChooserDialogParams{Enabled: false}); err != nil {
		t.Fatal(err)
	}

	// The chosen photo: boxes, labels, table, JSON.
	do("choose the group photo", chromedp.SetUploadFiles(chromedp.ID("file"), []string{photo}),
		chromedp.WaitVisible(chromedp.CSS("#faces td.gender")))
	count, gender, ageGroup := text("#count"), text("#faces td.gender"), text("#faces td.age-group")
	years, genderProb, jsonText := text("#faces td.age-years"), text("#faces td.gender-prob"), text("#json")
	canvasW := evalNum(`document.getElementById("canvas").width`)
	pageW := evalNum(`document.documentElement.scrollWidth`)
	labelPx := evalNum(`parseFloat(document.getElementById("canvas").dataset.labelPx)`)
	t.Logf("%d px: %s faces, first %s %s (%s years, %s); canvas %v px, page %v px wide, labels %.1f CSS px",
		width, count, gender, ageGroup, years, genderProb, canvasW, pageW, labelPx)
	if n, err := strconv.Atoi(count); err != nil || n < 1 {
		t.Errorf("page shows %q faces, want at least 1", count)
	}
	if gender != "m" && gender != "f" {
		t.Errorf("gender cell %q, want m or f", gender)
	}
	known := map[string]bool{"0-2": true, "4-6": true, "8-12": true, "15-20": true, "25-32": true, "38-43": true, "48-53": true, "60-100": true}
	if !known[ageGroup] {
		t.Errorf("age group cell %q is not an age group", ageGroup)
	}
	if !strings.Contains(years, " ± ") {
		t.Errorf("age cell %q, want years like \"31 ± 5\"", years)
	}
	if strings.Contains(genderProb, "100.0") || !strings.HasSuffix(genderProb, "%") {
		t.Errorf("gender probability %q: want a percentage that never rounds up to 100.0%%", genderProb)
	}
	if !strings.Contains(jsonText, `"faces"`) {
		t.Errorf("JSON view shows %.80q", jsonText)
	}
	if !evalBool(`document.querySelector('a[href="openapi.json"]') !== null`) {
		t.Error("no link to openapi.json")
	}
	if canvasW != 4*200+5*40 {
		t.Errorf("canvas width %v, want the photo's 1000 px", canvasW)
	}
	if pageW > float64(width) {
		t.Errorf("page is %v px wide in a %d px window", pageW, width)
	}
	if labelPx < 12 {
		t.Errorf("box labels are %.1f CSS px, want at least 12", labelPx)
	}
	img, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", shot)

	// A broken file: an error, and nothing left of the previous photo.
	do("send a broken file", chromedp.SetUploadFiles(chromedp.ID("file"), []string{broken}),
		chromedp.WaitVisible(chromedp.CSS("#status.error")))
	errText := text("#status")
	cleared := evalBool(`document.getElementById("canvas").hidden && document.getElementById("canvas").width === 0 &&
		document.getElementById("jsonbox").hidden && document.getElementById("faces") === null`)
	t.Logf("error shown: %q", errText)
	if !strings.Contains(errText, "400") || !cleared {
		t.Errorf("after an error: status %q, old result cleared %v", errText, cleared)
	}

	// The camera (Chromium's fake one): a snapshot is analysed.
	do("take a camera snapshot",
		chromedp.Click(chromedp.ID("camera")),
		chromedp.WaitVisible(chromedp.ID("cam")),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`document.getElementById("video").videoWidth > 0`, chromedp.WithPollingTimeout(20*time.Second))(ctx, t)
			return err
		}),
		chromedp.Click(chromedp.ID("snap")),
		chromedp.WaitVisible(chromedp.ID("count")),
	)
	snap := text("#status")
	t.Logf("camera snapshot: %q", snap)
	if !strings.Contains(snap, "640×480") {
		t.Errorf("camera snapshot: status %q, want the 640×480 frame analysed", snap)
	}
}
