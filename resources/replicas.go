package resources

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/internal/backoff"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// ReplicasFolder is where the replicas of a distributed run keep their own
// folders, under the run's: replicas/<name>/resources/ holds a replica's
// series and summary, named as a single-replica run's are in resources/. It is the
// run layout's resume.ReplicasPrefix, without its slash.
const ReplicasFolder = "replicas"

// replicaSummaries is the run's flat folder of its replicas' final
// summaries, resources/replicas/<name>.json: a copy of each replica's own
// summary made at the end of its attempt, so that one listing gives every
// replica's with the version the store holds.
const replicaSummaries = Folder + "/" + ReplicasFolder + "/"

// RunSummary is a distributed run's summary, at the run's resources/
// summary.json: the sum over its replicas, and each replica's own summary
// beside it. Core-seconds, GPU-hours, samples and OOM kills are summed;
// peaks (cores, memory, GPU memory) are the highest of one replica's, each
// replica's own being in Replicas; the duration is the longest replica's;
// GPUs lists every replica's devices. Final is set when every replica of
// the run has ended an attempt and each summary summed is final.
type RunSummary struct {
	Summary
	Replicas map[string]*Summary `json:"replicas"`
	// Versions is, for each replica in Replicas, the version of its copy in
	// resources/replicas/ that was summed, as the store's listing gives it.
	// A replica in Replicas without one was summed by an earlier version
	// of the collector, from its own folder.
	Versions map[string]string `json:"versions,omitempty"`
}

// Limits of EndReplica.
const (
	// patience is how long a replica waits for another, summing, to
	// include its summary, while the run's summary does not change.
	patience = 2 * time.Second
	// maxRounds bounds the rounds of one replica's summing: a round ends
	// unsettled only when a replica ended during it.
	maxRounds = 64
	// readers is how many summaries a replica reads at once.
	readers = 16
)

// EndReplica adds the replica's final summary to the run's (rooted at
// <run>/): it copies replicas/<replica>/resources/summary.json to
// resources/replicas/<replica>.json, then makes sure the run's
// resources/summary.json includes that copy.
//
// Each replica's end costs a few requests whatever the number of replicas:
// the run's summary records the version of each copy it was summed from, so
// a replica reads only the copies that changed since (one listing of
// resources/replicas/ finds them); where several replicas end at once, the
// one with the lowest name among those not yet summed sums, the others wait
// until the run's summary includes theirs (or take over when it stays the
// same for a while). A replica that writes the run's summary lists the
// copies again after writing it and sums again if one changed meanwhile, so
// the last one written is the sum over every copy, however the ends
// interleave; no conditional write is needed.
//
// No summary of the replica in the store (its sampler wrote none) adds
// nothing.
func EndReplica(ctx context.Context, run *blob.Bucket, name, replica string) error {
	key := resume.ReplicaPrefix(replica) + Folder + "/" + SummaryKey
	own, err := run.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	s := &Summary{}
	if err := json.Unmarshal(own, s); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	copyKey := replicaSummaries + replica + ".json"
	if err := run.WriteAll(ctx, copyKey, own, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write %s: %w", copyKey, err)
	}
	sum := md5.Sum(own)
	e := &summer{run: run, name: name, replica: replica, read: map[string]versioned{}}
	e.own = versioned{md5: sum[:], s: s}
	return e.settle(ctx)
}

// versioned is a replica's summary as read, and the version it was read at.
type versioned struct {
	version string
	md5     []byte
	s       *Summary
}

// summer is one replica's part in keeping the run's summary.
type summer struct {
	run     *blob.Bucket
	name    string
	replica string
	own     versioned            // the replica's copy, as written
	read    map[string]versioned // copies read, by replica
}

// settle returns once the run's summary includes the replica's copy:
// written by another replica, or by this one and found settled after.
func (e *summer) settle(ctx context.Context) error {
	held, raw, err := e.held(ctx)
	if err != nil {
		return err
	}
	listed, err := e.list(ctx)
	if err != nil {
		return err
	}
	mine, ok := listed[e.replica]
	if !ok {
		return fmt.Errorf("list %s: %s.json, just written, is not listed", replicaSummaries, e.replica)
	}
	wait := backoff.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	quiet := time.Now()
	for {
		if held.Versions[e.replica] == mine {
			return nil
		}
		if !e.smallerPending(held, listed) || time.Since(quiet) >= patience {
			break
		}
		if !wait.Wait(ctx) {
			return fmt.Errorf("wait for the run's summary to include %s: %w", e.replica, ctx.Err())
		}
		next, nextRaw, err := e.held(ctx)
		if err != nil {
			return err
		}
		if bytes.Equal(nextRaw, raw) {
			continue
		}
		held, raw, quiet = next, nextRaw, time.Now()
		if listed, err = e.list(ctx); err != nil {
			return err
		}
	}
	for range maxRounds {
		sum, err := e.sum(ctx, held, listed)
		if err != nil {
			return err
		}
		if err := e.put(ctx, sum); err != nil {
			return err
		}
		if listed, err = e.list(ctx); err != nil {
			return err
		}
		if settled(sum, listed) {
			return nil
		}
		if held, _, err = e.held(ctx); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s/%s: replicas kept ending while %s summed them: gave up after %d rounds", Folder, SummaryKey, e.replica, maxRounds)
}

// smallerPending tells whether a replica named before this one has a copy
// the run's summary does not hold: that one sums.
func (e *summer) smallerPending(held *RunSummary, listed map[string]string) bool {
	for name, v := range listed {
		if name < e.replica && held.Versions[name] != v {
			return true
		}
	}
	return false
}

// settled tells whether sum holds every listed copy at its version.
func settled(sum *RunSummary, listed map[string]string) bool {
	for name, v := range listed {
		if sum.Versions[name] != v {
			return false
		}
	}
	return true
}

// held reads the run's summary: an empty one where there is none yet, or
// where it cannot be decoded (it is made again from the copies).
func (e *summer) held(ctx context.Context) (*RunSummary, []byte, error) {
	key := Folder + "/" + SummaryKey
	raw, err := e.run.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return &RunSummary{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", key, err)
	}
	held := &RunSummary{}
	if json.Unmarshal(raw, held) != nil {
		held = &RunSummary{}
	}
	return held, raw, nil
}

// list returns the version of each replica's copy in resources/replicas/:
// its modification time, size and MD5 as the listing gives them. Where a
// store gives no MD5 and times to the second, two writes of one copy in one
// second and of one size look the same: a copy is written once an attempt.
func (e *summer) list(ctx context.Context) (map[string]string, error) {
	listed := map[string]string{}
	it := stores.List(e.run, &blob.ListOptions{Prefix: replicaSummaries, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return listed, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", replicaSummaries, err)
		}
		name, ok := strings.CutSuffix(obj.Key[len(replicaSummaries):], ".json")
		if obj.IsDir || !ok {
			continue
		}
		listed[name] = fmt.Sprintf("%s %d %x", obj.ModTime.UTC().Format(time.RFC3339Nano), obj.Size, obj.MD5)
	}
}

// sum makes the run's summary over the listed copies: those held at the
// same version are taken from the run's summary, the others read (the
// replica's own from memory), and a replica summed by an earlier version
// of the collector, which made no copy, is kept.
func (e *summer) sum(ctx context.Context, held *RunSummary, listed map[string]string) (*RunSummary, error) {
	got := map[string]*Summary{}
	var stale []string
	for name, v := range listed {
		switch {
		case held.Versions[name] == v && held.Replicas[name] != nil:
			got[name] = held.Replicas[name]
		case e.read[name].version == v:
			got[name] = e.read[name].s
		case name == e.replica && strings.HasSuffix(v, fmt.Sprintf(" %x", e.own.md5)):
			got[name] = e.own.s
		default:
			stale = append(stale, name)
		}
	}
	read := make([]*Summary, len(stale))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for i, name := range stale {
		g.Go(func() error {
			key := replicaSummaries + name + ".json"
			data, err := e.run.ReadAll(gctx, key)
			if gcerrors.Code(err) == gcerrors.NotFound {
				return nil // deleted since the listing: summed no more
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			s := &Summary{}
			if err := json.Unmarshal(data, s); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			read[i] = s
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, name := range stale {
		if read[i] != nil {
			got[name] = read[i]
			e.read[name] = versioned{version: listed[name], s: read[i]}
		}
	}

	sum := &RunSummary{
		Summary:  Summary{Run: e.name, Final: true, Updated: time.Now().UTC(), Attempts: []int{}, GPUs: []SummaryGPU{}},
		Replicas: map[string]*Summary{},
		Versions: map[string]string{},
	}
	for name, s := range held.Replicas {
		if _, versioned := held.Versions[name]; !versioned && got[name] == nil && s != nil {
			got[name] = s // summed by an earlier version: no copy to list
		}
	}
	for name, s := range got {
		sum.Replicas[name] = s
		if v, ok := listed[name]; ok {
			sum.Versions[name] = v
		}
	}
	// Every replica that has started has a folder: one that has not ended
	// yet leaves the run's summary not final.
	replicas, err := resume.ListReplicas(ctx, e.run)
	if err != nil {
		return nil, err
	}
	for _, r := range replicas {
		if sum.Replicas[r] == nil {
			sum.Final = false
		}
	}
	for _, name := range slices.Sorted(maps.Keys(sum.Replicas)) {
		sum.add(sum.Replicas[name])
	}
	return sum, nil
}

// put writes the run's summary.
func (e *summer) put(ctx context.Context, sum *RunSummary) error {
	data, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	key := Folder + "/" + SummaryKey
	if err := e.run.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// add counts one replica's summary in the run's.
func (t *RunSummary) add(s *Summary) {
	t.Final = t.Final && s.Final
	t.Samples += s.Samples
	if !s.Start.IsZero() && (t.Start.IsZero() || s.Start.Before(t.Start)) {
		t.Start = s.Start
	}
	if s.End.After(t.End) {
		t.End = s.End
	}
	t.DurationSeconds = max(t.DurationSeconds, s.DurationSeconds)
	t.CPU.CoreSeconds = round(t.CPU.CoreSeconds+s.CPU.CoreSeconds, 3)
	t.CPU.PeakCores = max(t.CPU.PeakCores, s.CPU.PeakCores)
	t.CPU.ThrottledSeconds = round(t.CPU.ThrottledSeconds+s.CPU.ThrottledSeconds, 3)
	t.CPU.ThrottledPeriods += s.CPU.ThrottledPeriods
	if t.DurationSeconds > 0 {
		t.CPU.MeanCores = round(t.CPU.CoreSeconds/t.DurationSeconds, 3)
	}
	t.Memory.PeakRSSBytes = max(t.Memory.PeakRSSBytes, s.Memory.PeakRSSBytes)
	t.Memory.PeakPSSBytes = max(t.Memory.PeakPSSBytes, s.Memory.PeakPSSBytes)
	t.Memory.CgroupPeakBytes = max(t.Memory.CgroupPeakBytes, s.Memory.CgroupPeakBytes)
	t.Memory.CgroupLimitHits += s.Memory.CgroupLimitHits
	t.Memory.OOMKills += s.Memory.OOMKills
	if s.Memory.LastOOMKill.After(t.Memory.LastOOMKill) {
		t.Memory.LastOOMKill = s.Memory.LastOOMKill
	}
	t.GPUs = append(t.GPUs, s.GPUs...)
}
