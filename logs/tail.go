package logs

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"gocloud.dev/blob"
)

// Tail passes the run's last n records that f selects to fn, in Read's
// order. It reads only each source's last chunks, enough to hold n records
// of it, not the whole run: the last n of the run are among them.
func Tail(ctx context.Context, run *blob.Bucket, f Filter, n int, fn func(e *Entry, raw []byte) error) error {
	if n <= 0 {
		return nil
	}
	names, err := listChunks(ctx, run)
	if err != nil {
		return err
	}
	bySource := map[string][]string{}
	var sources []string
	for _, k := range names {
		src, _, _, _ := parseChunkName(k[len(Folder)+1:])
		if _, seen := bySource[src]; !seen {
			sources = append(sources, src)
		}
		bySource[src] = append(bySource[src], k)
	}
	var keep []string
	for _, src := range sources {
		keys := bySource[src]
		first, count := len(keys), 0
		for first > 0 && count < n {
			first--
			c, err := countRecords(ctx, run, keys[first], f)
			if err != nil {
				return err
			}
			count += c
		}
		keep = append(keep, keys[first:]...)
	}
	// readChunks takes the keys in name order, each source's in its own.
	ring := make([]struct {
		e   Entry
		raw []byte
	}, n)
	total := 0
	err = readChunks(ctx, run, keep, f, func(e *Entry, raw []byte) error {
		r := &ring[total%n]
		r.e, r.raw = *e, append(r.raw[:0], raw...)
		total++
		return nil
	})
	if err != nil {
		return err
	}
	for i := max(0, total-n); i < total; i++ {
		r := &ring[i%n]
		if err := fn(&r.e, r.raw); err != nil {
			return err
		}
	}
	return nil
}

// countRecords counts the records of one chunk that f selects.
func countRecords(ctx context.Context, run *blob.Bucket, key string, f Filter) (int, error) {
	r, err := run.NewReader(ctx, key, nil)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	defer gz.Close()
	br := bufio.NewReaderSize(gz, 256<<10)
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && err == nil {
			e, perr := ParseEntry(line[:len(line)-1])
			if perr != nil {
				return 0, fmt.Errorf("read %s: %w", key, perr)
			}
			if f.match(&e) {
				n++
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	return n, nil
}
