// Command gentree writes a tree of files with pseudo-random contents for the benchmarks in bench/.
//
//	gentree -dir DIR -files N -dirs D -size BYTES [-seed S]
//
// It writes N files of BYTES bytes each, spread evenly over D folders (d000/ ... ), named f000000.bin
// and up. With -files 1 -dirs 0 it writes one file, DIR/big.bin. The bytes come from a seeded ChaCha8
// stream, so they do not compress and each file differs from every other. It uses only the standard
// library, so it builds whatever the state of the rest of the module.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"
)

func main() {
	dir := flag.String("dir", "", "folder to create the tree in (created if missing)")
	files := flag.Int("files", 1000, "number of files")
	dirs := flag.Int("dirs", 10, "number of folders to spread the files over (0: all at the top, one file named big.bin when -files is 1)")
	size := flag.Int64("size", 4096, "size of each file in bytes")
	seed := flag.Uint64("seed", 1, "seed of the byte stream")
	workers := flag.Int("workers", 4, "files written at once")
	flag.Parse()
	if *dir == "" || *files < 1 || *dirs < 0 || *size < 0 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "gentree: -dir is required; -files >= 1, -dirs >= 0, -size >= 0, -workers >= 1")
		os.Exit(2)
	}
	start := time.Now()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(err)
	}
	for d := 0; d < *dirs; d++ {
		if err := os.MkdirAll(filepath.Join(*dir, fmt.Sprintf("d%03d", d)), 0o755); err != nil {
			fail(err)
		}
	}
	name := func(i int) string {
		if *dirs == 0 {
			if *files == 1 {
				return filepath.Join(*dir, "big.bin")
			}
			return filepath.Join(*dir, fmt.Sprintf("f%06d.bin", i))
		}
		return filepath.Join(*dir, fmt.Sprintf("d%03d", i%*dirs), fmt.Sprintf("f%06d.bin", i))
	}

	jobs := make(chan int)
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := writeFile(name(i), *size, *seed, uint64(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var firstErr error
feed:
	for i := 0; i < *files; i++ {
		select {
		case jobs <- i:
		case firstErr = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		select {
		case firstErr = <-errs:
		default:
		}
	}
	if firstErr != nil {
		fail(firstErr)
	}
	fmt.Fprintf(os.Stderr, "gentree: %d files of %d bytes in %s (%s)\n", *files, *size, *dir, time.Since(start).Round(time.Millisecond))
}

// writeFile writes size bytes of the ChaCha8 stream keyed by (seed, i) to path.
func writeFile(path string, size int64, seed, i uint64) error {
	var key [32]byte
	for b := 0; b < 8; b++ {
		key[b] = byte(seed >> (8 * b))
		key[8+b] = byte(i >> (8 * b))
	}
	src := rand.NewChaCha8(key)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = src.Read(buf[:n]) // ChaCha8.Read never fails
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gentree:", err)
	os.Exit(1)
}
