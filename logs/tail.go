package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"gocloud.dev/blob"
)

// Tail passes the run's last n records that f selects to fn, in Read's
// order. It reads each source's chunks from the last one back, each once,
// only until it holds n records of that source, and decodes only the lines
// it keeps (and, with a filter, the lines it has to test): the last chunk
// of a chatty job holds millions of lines.
func Tail(ctx context.Context, run *blob.Bucket, f Filter, n int, fn func(e *StoredRecord, raw []byte) error) error {
	if n <= 0 {
		return nil
	}
	names, err := listChunks(ctx, run, f.Replica)
	if err != nil {
		return err
	}
	bySource := map[string][]string{}
	var sources []string
	for _, k := range names {
		replica, name := chunkKey(k)
		src, _, _, _ := parseChunkName(name)
		src = replica + "/" + src
		if _, seen := bySource[src]; !seen {
			sources = append(sources, src)
		}
		bySource[src] = append(bySource[src], k)
	}
	tails := make([][]tailRecord, 0, len(sources))
	for _, src := range sources {
		t, err := sourceTail(ctx, run, bySource[src], f, n)
		if err != nil {
			return err
		}
		tails = append(tails, t)
	}
	// Merge the sources by timestamp as Read does, keeping the last n.
	var merged []tailRecord
	for {
		best := -1
		for i, t := range tails {
			if len(t) > 0 && (best < 0 || t[0].e.Timestamp.Before(tails[best][0].e.Timestamp)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		merged = append(merged, tails[best][0])
		tails[best] = tails[best][1:]
	}
	for _, r := range merged[max(0, len(merged)-n):] {
		if err := fn(&r.e, r.raw); err != nil {
			return err
		}
	}
	return nil
}

type tailRecord struct {
	e   StoredRecord
	raw []byte
}

// sourceTail returns the last n records of one source's chunks (keys, in
// name order) that f selects, oldest first.
func sourceTail(ctx context.Context, run *blob.Bucket, keys []string, f Filter, n int) ([]tailRecord, error) {
	var have []tailRecord
	for i := len(keys) - 1; i >= 0 && len(have) < n; i-- {
		lines, err := lastLines(ctx, run, keys[i], f, n-len(have))
		if err != nil {
			return nil, err
		}
		recs := make([]tailRecord, 0, len(lines)+len(have))
		for _, line := range lines {
			e, err := ParseStoredRecord(line)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", keys[i], err)
			}
			e.Replica, _ = chunkKey(keys[i])
			recs = append(recs, tailRecord{e, line})
		}
		have = append(recs, have...)
	}
	return have, nil
}

// lastLines returns the last m record lines of one chunk that f selects,
// oldest first, without their newlines.
func lastLines(ctx context.Context, run *blob.Bucket, key string, f Filter, m int) ([][]byte, error) {
	r, err := run.NewReader(ctx, key, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer gz.Close()
	br := bufio.NewReaderSize(gz, 256<<10)
	ring := make([][]byte, m)
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A record longer than the buffer: gather it whole.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 && err == nil {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if f != (Filter{}) {
				e, perr := ParseStoredRecord(line)
				if perr != nil {
					return nil, fmt.Errorf("read %s: %w", key, perr)
				}
				if !f.match(&e) {
					continue
				}
			}
			slot := &ring[total%m]
			*slot = append((*slot)[:0], line...)
			total++
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return nil, fmt.Errorf("read %s: the last record has no newline", key)
			}
			break
		}
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	out := make([][]byte, 0, min(total, m))
	for i := max(0, total-m); i < total; i++ {
		out = append(out, ring[i%m])
	}
	return out, nil
}
