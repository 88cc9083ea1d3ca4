// agegender patch: sessions from an optimized-model cache.
//
// Creating an ONNX Runtime session optimises the graph (fusions, layout
// transforms, constant folding), which for a 17 MB classifier costs about
// 0.25 s of a 0.7 s process. With the config option "cache=DIR" the first
// session of a graph also writes its optimized graph in ORT format to DIR,
// and later processes load that file, mapped read-only, with optimisation
// off and the initializers used in place: the same graph, created 3–4
// times faster. A cache file is named by a SHA-256 of the ONNX model, the
// library's version and the CPU (the optimized graph may use kernels
// specific to the CPU), and carries a trailer (length, CRC-32C, magic) so
// a truncated or damaged file is never given to ONNX Runtime; such a file,
// or one ONNX Runtime refuses, is deleted and rebuilt. The cache is best
// effort: any failure to read or write it falls back to an ordinary
// session. A process that finds its file never serialises the model (the
// key hashes the model's parts). Files are pruned, least recently used
// first, to keep the folder under cacheMaxBytes.

package onnxbackend

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	ort "github.com/gomlx/compute-onnx/internal/ort"
	onnx "github.com/gomlx/compute-onnx/internal/protos"
	"github.com/pkg/errors"
	"google.golang.org/protobuf/proto"
	"k8s.io/klog/v2"
)

// cacheFormat versions the cache files' name and trailer.
const cacheFormat = "agegender-ort-cache-1"

// cacheMagic ends every cache file.
var cacheMagic = [8]byte{'A', 'G', 'O', 'R', 'T', 'C', '1', '\n'}

// cacheTrailerLen is the trailer's size: the ORT model's length (8 bytes,
// little-endian), its CRC-32C (4) and cacheMagic (8).
const cacheTrailerLen = 20

// cacheMaxBytes bounds the cache folder's size.
const cacheMaxBytes = 1 << 30

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// sessionOptions returns the options every session of b starts from, and
// the function that releases them.
func (b *Backend) sessionOptions() (*ort.SessionOptions, func(), error) {
	options, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, errors.Wrap(err, "failed to create ONNX Runtime SessionOptions")
	}
	release := func() { _ = options.Destroy() }
	if b.cuda {
		cudaOpts, err := ort.NewCUDAProviderOptions()
		if err != nil {
			release()
			return nil, nil, errors.Wrap(err, "failed to create ONNX Runtime CUDAProviderOptions")
		}
		_ = cudaOpts.Update(map[string]string{
			"do_copy_in_default_stream": "1",
		})
		err = options.AppendExecutionProviderCUDA(cudaOpts)
		if err != nil {
			_ = cudaOpts.Destroy()
			release()
			return nil, nil, errors.Wrap(err, "failed to append CUDA execution provider to SessionOptions")
		}
		release = func() { _ = cudaOpts.Destroy(); _ = options.Destroy() }
	}
	logSev := b.logSeverity
	if logSev < 0 {
		logSev = 3 // ORT_LOGGING_LEVEL_ERROR by default
	}
	if err := options.SetSessionLogSeverityLevel(logSev); err != nil {
		release()
		return nil, nil, errors.Wrap(err, "failed to set ONNX Runtime session log severity level")
	}
	return options, release, nil
}

// cacheKeyFor returns the name of model's cache file, or "" when b has no
// cache (or runs on CUDA). It hashes the model without serialising it: the
// model with its initializers' raw data left out, then that raw data, so a
// process that finds the file never marshals the (large) model at all.
func (b *Backend) cacheKeyFor(model *onnx.ModelProto) string {
	if b.cacheDir == "" || b.cuda || !cacheSupported {
		return ""
	}
	var inits []*onnx.TensorProto
	if model.Graph != nil {
		inits = model.Graph.Initializer
	}
	raws := make([][]byte, len(inits))
	for i, t := range inits {
		raws[i], t.RawData = t.RawData, nil
	}
	skeleton, err := proto.MarshalOptions{Deterministic: true}.Marshal(model)
	for i, t := range inits {
		t.RawData = raws[i]
	}
	if err != nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s/%s\x00%s\x00", cacheFormat, ort.Version(), runtime.GOOS, runtime.GOARCH, cpuSignature())
	var n [8]byte
	for _, part := range append([][]byte{skeleton}, raws...) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// cachePath is the file of a cache key.
func (b *Backend) cachePath(key string) string { return filepath.Join(b.cacheDir, key+".ort") }

// cachedSessionFor creates the session of the model whose cache key is
// key from its cache file, if there is a usable one. A damaged file, or
// one ONNX Runtime refuses, is deleted (to be rebuilt by newSession).
// release is called after the session is destroyed.
func (b *Backend) cachedSessionFor(key string, inputNames, outputNames []string) (session *ort.DynamicAdvancedSession, release func(), ok bool) {
	if key == "" {
		return nil, nil, false
	}
	path := b.cachePath(key)
	session, release, err := b.cachedSession(path, inputNames, outputNames)
	if err != nil {
		if !os.IsNotExist(err) {
			klog.V(1).Infof("onnxruntime: optimized-model cache %s: %v; rebuilding it", path, err)
			_ = os.Remove(path)
		}
		return nil, nil, false
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now) // least recently used goes first
	return session, release, true
}

// newSession creates the session of an ONNX model (serialised), and when
// key is not "" (see cacheKeyFor) also writes the optimized model to its
// cache file. release, never nil, is called after the session is
// destroyed.
func (b *Backend) newSession(key string, modelBytes []byte, inputNames, outputNames []string) (session *ort.DynamicAdvancedSession, release func(), err error) {
	if key == "" {
		return b.plainSession(modelBytes, inputNames, outputNames, nil)
	}
	if err := os.MkdirAll(b.cacheDir, 0o700); err != nil {
		klog.V(1).Infof("onnxruntime: optimized-model cache: %v", err)
		return b.plainSession(modelBytes, inputNames, outputNames, nil)
	}
	path := b.cachePath(key)
	tmp := fmt.Sprintf("%s.tmp-%d-%d", path, os.Getpid(), time.Now().UnixNano())
	session, release, err = b.plainSession(modelBytes, inputNames, outputNames, func(o *ort.SessionOptions) error {
		if err := o.SetOptimizedModelFilePath(tmp); err != nil {
			return err
		}
		return o.AddConfigEntry("session.save_model_format", "ORT")
	})
	if err != nil {
		_ = os.Remove(tmp)
		return nil, nil, err
	}
	if err := sealCacheFile(tmp, path); err != nil {
		klog.V(1).Infof("onnxruntime: optimized-model cache: %v", err)
		_ = os.Remove(tmp)
	} else {
		pruneCache(b.cacheDir, cacheMaxBytes)
	}
	return session, release, nil
}

// plainSession creates a session from the ONNX model, its options
// adjusted by set when not nil.
func (b *Backend) plainSession(modelBytes []byte, inputNames, outputNames []string, set func(*ort.SessionOptions) error) (*ort.DynamicAdvancedSession, func(), error) {
	options, releaseOptions, err := b.sessionOptions()
	if err != nil {
		return nil, nil, err
	}
	defer releaseOptions()
	if set != nil {
		if err := set(options); err != nil {
			return nil, nil, err
		}
	}
	session, err := ort.NewDynamicAdvancedSessionWithONNXData(modelBytes, inputNames, outputNames, options)
	if err != nil {
		return nil, nil, err
	}
	return session, func() {}, nil
}

// cachedSession creates a session from the cache file at path: mapped
// read-only, checked against its trailer, loaded with optimisation off
// and its initializers used in place. The mapping is released by the
// returned function (after the session is destroyed).
func (b *Backend) cachedSession(path string, inputNames, outputNames []string) (*ort.DynamicAdvancedSession, func(), error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, nil, err
	}
	model, err := checkCacheFile(data)
	if err != nil {
		unmap()
		return nil, nil, err
	}
	session, _, err := b.plainSession(model, inputNames, outputNames, func(o *ort.SessionOptions) error {
		if err := o.SetGraphOptimizationLevel(ort.GraphOptimizationNone); err != nil {
			return err
		}
		for _, kv := range [][2]string{
			{"session.load_model_format", "ORT"},
			{"session.use_ort_model_bytes_directly", "1"},
			{"session.use_ort_model_bytes_for_initializers", "1"},
		} {
			if err := o.AddConfigEntry(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		unmap()
		return nil, nil, err
	}
	return session, unmap, nil
}

// checkCacheFile returns the ORT model inside a cache file's bytes, or an
// error if the trailer is missing or does not match.
func checkCacheFile(data []byte) ([]byte, error) {
	if len(data) < cacheTrailerLen || !bytes.Equal(data[len(data)-8:], cacheMagic[:]) {
		return nil, errors.New("not a complete cache file (no trailer)")
	}
	t := data[len(data)-cacheTrailerLen:]
	n := binary.LittleEndian.Uint64(t)
	if n != uint64(len(data)-cacheTrailerLen) {
		return nil, errors.Errorf("cache file holds %d bytes of model, its trailer says %d", len(data)-cacheTrailerLen, n)
	}
	model := data[:n]
	if crc32.Checksum(model, crc32c) != binary.LittleEndian.Uint32(t[8:]) {
		return nil, errors.New("cache file's checksum does not match")
	}
	return model, nil
}

// sealCacheFile appends the trailer to the ORT model ONNX Runtime wrote to
// tmp and renames it to path (atomically: a reader sees the whole file or
// none).
func sealCacheFile(tmp, path string) error {
	model, err := os.ReadFile(tmp)
	if err != nil {
		return err
	}
	if len(model) == 0 {
		return errors.Errorf("ONNX Runtime wrote no optimized model to %s", tmp)
	}
	var t [cacheTrailerLen]byte
	binary.LittleEndian.PutUint64(t[:], uint64(len(model)))
	binary.LittleEndian.PutUint32(t[8:], crc32.Checksum(model, crc32c))
	copy(t[12:], cacheMagic[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(t[:]); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// cpuSignature describes the CPU an optimized graph was made for: its
// model name and feature flags (from /proc/cpuinfo where there is one).
var cpuSignature = sync.OnceValue(func() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	var model, flags string
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		case "flags", "Features":
			if flags == "" {
				flags = strings.TrimSpace(v)
			}
		}
	}
	return model + "\x00" + flags
})

// pruneCache deletes the least recently used cache files of dir until the
// rest take at most max bytes, and temporary files older than an hour
// (left by a process that died while writing).
func pruneCache(dir string, max int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.Contains(e.Name(), ".ort.tmp-"):
			if time.Since(info.ModTime()) > time.Hour {
				_ = os.Remove(p)
			}
		case strings.HasSuffix(e.Name(), ".ort"):
			files = append(files, file{p, info.Size(), info.ModTime()})
			total += info.Size()
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	for _, f := range files {
		if total <= max {
			break
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
}
