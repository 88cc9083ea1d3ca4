// Command pack writes a small copy of UTKFace for a run on the lent GPU
// machine, where at most 64 MiB travels with a command: every face resized
// to -side pixels and re-encoded as JPEG at -quality, under its own file
// name, so that labels (in the names) and the train/validation/test split
// (a hash of the name) stay exactly those of the full set.
//
//	go run ./bench/gpu/pack -dst .gpu/utkface -side 96 -quality 80
//
// Files the loader would skip (malformed names) are skipped here too; an
// image that cannot be decoded is an error, since the copy must match.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/dataroot"
	"golang.org/x/image/draw"
)

func main() {
	src := flag.String("src", dataroot.Path("utkface/images"), "UTKFace image folder ($AGEGENDER_DATA/utkface/images)")
	dst := flag.String("dst", ".gpu/utkface", "output folder (created)")
	side := flag.Int("side", 96, "side of the square output images")
	quality := flag.Int("quality", 80, "JPEG quality")
	splits := flag.String("splits", "train,val,test", "splits to copy (comma-separated)")
	flag.Parse()
	if err := run(*src, *dst, *side, *quality, *splits); err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}

func run(src, dst string, side, quality int, splits string) error {
	samples, skipped, err := utkface.Load(src)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range filepath.SplitList(splitsToList(splits)) {
		want[s] = true
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		total int64
		n     int
		first error
		wg    sync.WaitGroup
	)
	jobs := make(chan string)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for path := range jobs {
				size, err := packOne(path, filepath.Join(dst, filepath.Base(path)), side, quality)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				total += size
				n++
				mu.Unlock()
			}
		}()
	}
	for _, s := range samples {
		if want[utkface.SplitOf(s.Path).String()] {
			jobs <- s.Path
		}
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		return first
	}
	fmt.Printf("packed %d faces (%s) into %s: %.1f MiB, %d files skipped as the loader skips them\n",
		n, splits, dst, float64(total)/(1<<20), len(skipped))
	return nil
}

// splitsToList turns "a,b" into a filepath list ("a:b") for SplitList.
func splitsToList(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == ',' {
			b[i] = filepath.ListSeparator
		}
	}
	return string(b)
}

func packOne(src, dst string, side, quality int) (int64, error) {
	img, _, err := imageio.DecodeFile(src, imageio.Limits{})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", src, err)
	}
	out := image.NewRGBA(image.Rect(0, 0, side, side))
	draw.CatmullRom.Scale(out, out.Bounds(), img, img.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: quality}); err != nil {
		return 0, err
	}
	return int64(buf.Len()), os.WriteFile(dst, buf.Bytes(), 0o644)
}
