package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// Filter selects records when reading a run's logs back; empty fields
// select everything.
type Filter struct {
	Container string
	Stream    string
	// Replica selects one replica of a distributed run.
	Replica string
}

func (f Filter) match(e *StoredRecord) bool {
	return (f.Container == "" || e.Container == f.Container) && (f.Stream == "" || e.Stream == f.Stream)
}

// ReplicasFolder is where the replicas of a distributed run keep their own
// folders, under the run's: replicas/<name>/logs/ holds a replica's chunks,
// named as a single-replica run's are in logs/. It is the
// run layout's resume.ReplicasPrefix, without its slash.
const ReplicasFolder = "replicas"

// chunkKey splits the key of a chunk, under the run, into its replica (""
// for the run's own logs/) and its name in the logs folder.
func chunkKey(key string) (replica, name string) {
	if rest, ok := strings.CutPrefix(key, ReplicasFolder+"/"); ok {
		replica, name, _ = strings.Cut(rest, "/"+Folder+"/")
		return replica, name
	}
	return "", key[len(Folder)+1:]
}

// Read passes the run's records to fn in order: each source's chunks in
// name order (attempt, then sequence), the sources merged by timestamp; in
// a distributed run each replica's sources too, each record's Replica set.
// run is the store rooted at the run (<run>/). raw is the record's JSON line
// without its newline, valid only during the call (it does not hold the
// replica).
func Read(ctx context.Context, run *blob.Bucket, f Filter, fn func(e *StoredRecord, raw []byte) error) error {
	names, err := listChunks(ctx, run, f.Replica)
	if err != nil {
		return err
	}
	return readChunks(ctx, run, names, f, fn)
}

// Follow is Read, then, every interval until ctx ends, the records of the
// chunks that landed since. A chunk that lands after a later one of its
// source (uploads run in parallel) is printed when it lands.
//
// lastEnded, when set, says which attempt of a replica ("" in a
// single-replica run) last ended (its final sync over, so all its chunks
// stored): Follow returns once it has read the chunks of each replica's last
// attempt after that attempt ended.
func Follow(ctx context.Context, run *blob.Bucket, interval time.Duration, f Filter, lastEnded func(ctx context.Context, replica string) (int, bool, error), fn func(e *StoredRecord, raw []byte) error) error {
	done := map[string]bool{}
	latest := map[string]int{} // by replica, the highest attempt of a chunk seen
	for {
		// Asked before the listing: the chunks of an attempt that had
		// ended by then are all in the listing.
		over := lastEnded != nil
		if over && len(latest) == 0 {
			// Nothing logged yet: over once the run (a single-replica
			// run's marker) has ended.
			_, ended, err := lastEnded(ctx, "")
			if err != nil {
				return err
			}
			over = ended
		}
		for replica, attempt := range latest {
			if !over {
				break
			}
			endedAt, ended, err := lastEnded(ctx, replica)
			if err != nil {
				return err
			}
			over = ended && endedAt >= attempt
		}
		names, err := listChunks(ctx, run, f.Replica)
		if err != nil {
			return err
		}
		var fresh []string
		for _, n := range names {
			if !done[n] {
				fresh = append(fresh, n)
				done[n] = true
				replica, name := chunkKey(n)
				_, attempt, _, _ := parseChunkName(name)
				latest[replica] = max(latest[replica], attempt)
				over = false // a replica that logged since the question
			}
		}
		if err := readChunks(ctx, run, fresh, f, fn); err != nil {
			return err
		}
		if over {
			return nil // no attempt after the ones that ended has logged
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// listChunks returns the keys of the run's chunks, in name order: the
// run's own logs/, and each replica's (only replica's, when it is set).
func listChunks(ctx context.Context, run *blob.Bucket, replica string) ([]string, error) {
	var folders []string
	if replica == "" {
		folders = append(folders, Folder+"/")
		replicas, err := resume.ListReplicas(ctx, run)
		if err != nil {
			return nil, err
		}
		for _, r := range replicas {
			folders = append(folders, ReplicasFolder+"/"+r+"/"+Folder+"/")
		}
	} else {
		folders = append(folders, ReplicasFolder+"/"+replica+"/"+Folder+"/")
	}
	var names []string
	for _, folder := range folders {
		it := stores.List(run, &blob.ListOptions{Prefix: folder})
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", folder, err)
			}
			if _, _, _, ok := parseChunkName(obj.Key[len(folder):]); ok {
				names = append(names, obj.Key)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// readChunks merges the chunks given (keys in name order) by source.
func readChunks(ctx context.Context, run *blob.Bucket, keys []string, f Filter, fn func(e *StoredRecord, raw []byte) error) error {
	var streams []*chunkStream
	bySource := map[string]*chunkStream{}
	for _, k := range keys {
		replica, name := chunkKey(k)
		src, _, _, _ := parseChunkName(name)
		s := bySource[replica+"/"+src]
		if s == nil {
			s = &chunkStream{ctx: ctx, run: run, f: f, replica: replica}
			bySource[replica+"/"+src] = s
			streams = append(streams, s)
		}
		s.keys = append(s.keys, k)
	}
	for _, s := range streams {
		s.ahead = stores.OpenAhead(ctx, run, s.keys, chunksAhead)
	}
	defer func() {
		for _, s := range streams {
			s.stop()
		}
	}()
	for _, s := range streams {
		if err := s.next(); err != nil {
			return err
		}
	}
	for {
		var best *chunkStream
		for _, s := range streams {
			if s.head != nil && (best == nil || s.head.Timestamp.Before(best.head.Timestamp)) {
				best = s
			}
		}
		if best == nil {
			return nil
		}
		if err := fn(best.head, best.raw); err != nil {
			return err
		}
		if err := best.next(); err != nil {
			return err
		}
	}
}

// chunksAhead is how many of a source's next chunks are requested before
// it reads them: a source whose chunks are sealed by age leaves thousands a
// day, each a round trip to the store.
const chunksAhead = 4

// chunkStream reads one source's chunks in order, one record at a time.
type chunkStream struct {
	ctx     context.Context
	run     *blob.Bucket
	f       Filter
	keys    []string
	ahead   *stores.Ahead // opens keys' readers ahead
	replica string

	key  string
	r    *blob.Reader
	gz   *gzip.Reader
	br   *bufio.Reader
	head *StoredRecord
	raw  []byte
}

// next moves to the source's next record that the filter takes.
func (s *chunkStream) next() error {
	for {
		if s.br == nil {
			key, r, err := s.ahead.Next()
			if errors.Is(err, io.EOF) {
				s.head = nil
				return nil
			}
			s.key = key
			if err != nil {
				return fmt.Errorf("read %s: %w", s.key, err)
			}
			gz, err := gzip.NewReader(r)
			if err != nil {
				r.Close()
				return fmt.Errorf("read %s: %w", s.key, err)
			}
			s.r, s.gz, s.br = r, gz, bufio.NewReaderSize(gz, 256<<10)
		}
		line, err := s.br.ReadBytes('\n')
		if len(line) > 0 && err == nil {
			line = bytes.TrimSuffix(line, []byte("\n"))
			e, perr := ParseStoredRecord(line)
			if perr != nil {
				return fmt.Errorf("read %s: %w", s.key, perr)
			}
			if s.f.match(&e) {
				e.Replica = s.replica
				s.head, s.raw = &e, line
				return nil
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return fmt.Errorf("read %s: the last record has no newline", s.key)
			}
			s.close()
			continue
		}
		return fmt.Errorf("read %s: %w", s.key, err)
	}
}

// close ends the chunk being read.
func (s *chunkStream) close() {
	if s.r != nil {
		s.gz.Close()
		s.r.Close()
	}
	s.r, s.gz, s.br = nil, nil, nil
}

// stop ends the stream: the chunk being read, and those requested ahead.
func (s *chunkStream) stop() {
	s.close()
	s.ahead.Close()
}
