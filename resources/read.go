package resources

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/spool"
	"github.com/mlsidecar/collector/stores"
)

// ReadSeries passes the run's samples, or one replica's (replica not ""),
// as the store holds them, to fn in order: the chunks by attempt, then by
// sequence, the samples of a chunk as written. run is the store rooted at
// the run (<run>/). Chunks of an earlier version's names read the same. A
// chunk that is not gzip JSON Lines is an error naming it; fn's error ends
// the reading and is returned.
func ReadSeries(ctx context.Context, run *blob.Bucket, replica string, fn func(*Sample) error) error {
	type chunk struct {
		key     string
		attempt int
		seq     uint64
	}
	var chunks []chunk
	folder := resume.ReplicaPrefix(replica) + Folder + "/"
	it := stores.List(run, &blob.ListOptions{Prefix: folder})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", folder, err)
		}
		series, attempt, seq, ok := spool.ParseChunkName(obj.Key[len(folder):])
		if ok && (series == Series || series == "") {
			chunks = append(chunks, chunk{obj.Key, attempt, seq})
		}
	}
	sort.Slice(chunks, func(i, j int) bool {
		if chunks[i].attempt != chunks[j].attempt {
			return chunks[i].attempt < chunks[j].attempt
		}
		return chunks[i].seq < chunks[j].seq
	})
	keys := make([]string, len(chunks))
	for i, c := range chunks {
		keys[i] = c.key
	}
	ahead := stores.OpenAhead(ctx, run, keys, chunksAhead)
	defer ahead.Close()
	for {
		key, r, err := ahead.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		err = readStoredChunk(key, r, fn)
		r.Close()
		if err != nil {
			return err
		}
	}
}

// chunksAhead is how many chunks are requested ahead of the one read: a
// day's series is hundreds of chunks, each a round trip to the store.
const chunksAhead = 8

// readStoredChunk passes the samples of one stored chunk, read from r, to fn.
func readStoredChunk(key string, r io.Reader, fn func(*Sample) error) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer gz.Close()
	sc := bufio.NewScanner(gz)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		if err := fn(&s); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	return nil
}

// ReadSummary reads the run's summary.json from the store (run rooted at
// <run>/); ok is false when there is none.
func ReadSummary(ctx context.Context, run *blob.Bucket) (s *Summary, ok bool, err error) {
	key := Folder + "/" + SummaryKey
	data, err := run.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", key, err)
	}
	s = &Summary{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, false, fmt.Errorf("%s: %w", key, err)
	}
	return s, true, nil
}
