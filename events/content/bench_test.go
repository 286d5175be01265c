package content_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/diff"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

var (
	corpusOnce sync.Once
	corpus     [][]byte // this repository's Go and Markdown files
)

// sources returns this repository's Go and Markdown files between min
// and max bytes long.
func sources(tb testing.TB, minSize, maxSize int) [][]byte {
	tb.Helper()
	corpusOnce.Do(func() {
		_ = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".md")) {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil {
				corpus = append(corpus, b)
			}
			return nil
		})
	})
	var out [][]byte
	for _, f := range corpus {
		if len(f) >= minSize && len(f) <= maxSize {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no source file of %d to %d bytes under ../..", minSize, maxSize)
	}
	return out
}

// variant returns source file i%len(files), made distinct by a first
// comment line naming i.
func variant(files [][]byte, i int) []byte {
	f := files[i%len(files)]
	v := make([]byte, 0, len(f)+24)
	v = fmt.Appendf(v, "// variant %d\n", i)
	return append(v, f...)
}

func average(files [][]byte) int64 {
	n := 0
	for _, f := range files {
		n += len(f)
	}
	return int64(n / len(files))
}

// BenchmarkStore_Put queues source files of 4 to 40 KiB (hashing each, as
// a caller does) and waits for the last to be stored: the throughput of
// the writers.
func BenchmarkStore_Put(b *testing.B) {
	files := sources(b, 4<<10, 40<<10)
	srv := natstest.Start(b)
	s := open(b, srv.Conn(), content.Options{})
	b.SetBytes(average(files))
	b.ReportAllocs()
	i := 0
	cpu := eventstest.CPUTime(b)
	for b.Loop() {
		d := variant(files, i)
		i++
		if err := s.Put(b.Context(), ws, key(d), d); err != nil {
			b.Fatal(err)
		}
	}
	flush(b, s)
	b.ReportMetric(float64((eventstest.CPUTime(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	st := s.Stats()
	b.ReportMetric(float64(st.BytesStored)/float64(st.BytesIn), "stored/raw")
}

// BenchmarkStore_PutFlush stores one source file at a time and waits for
// it: the latency of one write.
func BenchmarkStore_PutFlush(b *testing.B) {
	files := sources(b, 4<<10, 40<<10)
	srv := natstest.Start(b)
	s := open(b, srv.Conn(), content.Options{})
	b.SetBytes(average(files))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := variant(files, i)
		i++
		if err := s.Put(b.Context(), ws, key(d), d); err != nil {
			b.Fatal(err)
		}
		flush(b, s)
	}
}

// BenchmarkStore_Get reads back source files of 4 to 40 KiB.
func BenchmarkStore_Get(b *testing.B) {
	files := sources(b, 4<<10, 40<<10)
	srv := natstest.Start(b)
	s := open(b, srv.Conn(), content.Options{})
	keys := make([]string, len(files))
	for i := range files {
		keys[i] = key(variant(files, i))
		if err := s.Put(b.Context(), ws, keys[i], variant(files, i)); err != nil {
			b.Fatal(err)
		}
	}
	flush(b, s)
	b.SetBytes(average(files))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), ws, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkStore_Disk10k stores 10,000 source files (this repository's,
// varied) and reports the bytes they take: as given, in the stream, and
// on disk.
func BenchmarkStore_Disk10k(b *testing.B) {
	const n = 10_000
	files := sources(b, 1, 1<<20)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		srv := natstest.StartWith(b, natsd.Options{StoreDir: dir})
		s := open(b, srv.Conn(), content.Options{})
		b.StartTimer()
		raw := 0
		for i := range n {
			d := variant(files, i)
			raw += len(d)
			if err := s.Put(b.Context(), ws, key(d), d); err != nil {
				b.Fatal(err)
			}
		}
		flush(b, s)
		b.StopTimer()
		inStream := streamState(b, srv.Conn()).State.Bytes
		_ = s.Close()
		_ = srv.Close()
		disk := int64(0)
		_ = filepath.WalkDir(filepath.Join(dir, "jetstream", "$G", "streams", content.StreamName), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					disk += info.Size()
				}
			}
			return nil
		})
		b.ReportMetric(float64(raw)/n, "raw-B/file")
		b.ReportMetric(float64(inStream)/(1<<20), "stream-MiB/10k")
		b.ReportMetric(float64(disk)/(1<<20), "disk-MiB/10k")
		b.StartTimer()
	}
}

// BenchmarkIndex compares, per file, what indexing costs with and without
// the store: hashing and the text check of 10,000 files in memory — this
// repository's source files, and files of a dozen bytes — then the same
// with each handed to Put and the last one stored. Reading the files from
// disk, which indexing also does, is left out, so the difference is the
// store's whole share. cpu-ns/file counts every goroutine, the embedded
// server's included.
func BenchmarkIndex(b *testing.B) {
	const n = 10_000
	for _, corpus := range []struct {
		name  string
		files [][]byte
	}{
		{"source", sources(b, 1, 1<<20)},
		{"tiny", [][]byte{[]byte("file\n")}},
	} {
		datas := make([][]byte, n)
		for i := range datas {
			datas[i] = variant(corpus.files, i)
		}
		hash := func(d []byte) (string, bool) {
			sum := sha256.Sum256(d)
			return hex.EncodeToString(sum[:]), diff.IsText(d)
		}
		b.Run(corpus.name+"/hash", func(b *testing.B) {
			cpu := eventstest.CPUTime(b)
			for b.Loop() {
				for _, d := range datas {
					hash(d)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/file")
			b.ReportMetric(float64((eventstest.CPUTime(b)-cpu).Nanoseconds())/float64(b.N*n), "cpu-ns/file")
		})
		b.Run(corpus.name+"/hash+store", func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				srv := natstest.Start(b)
				s := open(b, srv.Conn(), content.Options{})
				start := eventstest.CPUTime(b)
				b.StartTimer()
				for _, d := range datas {
					k, isText := hash(d)
					if isText {
						if err := s.Put(b.Context(), ws, k, d); err != nil {
							b.Fatal(err)
						}
					}
				}
				flush(b, s)
				b.StopTimer()
				cpu += eventstest.CPUTime(b) - start
				_ = s.Close()
				_ = srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/file")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/file")
		})
	}
}
