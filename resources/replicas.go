package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ReplicasFolder is where the replicas of a distributed run keep their own
// folders, under the run's: replicas/<name>/resources/ holds a replica's
// series and summary, named as a single-replica run's are in resources/. It is the
// run layout's resume.ReplicasPrefix, without its slash.
const ReplicasFolder = "replicas"

// RunSummary is a distributed run's summary, at the run's resources/
// summary.json: the sum over its replicas, and each replica's own summary
// beside it. Core-seconds, GPU-hours, samples and OOM kills are summed;
// peaks (cores, memory, GPU memory) are the highest of one replica's, each
// replica's own being in Replicas; the duration is the longest replica's;
// GPUs lists every replica's devices.
type RunSummary struct {
	Summary
	// Final is set once every replica's summary is final.
	Replicas map[string]*Summary `json:"replicas"`
}

// SumReplicas reads the summary of each replica of the run (rooted at
// <run>/) and sums them. It lists replicas/ one level deep and reads one
// object per replica. ok is false when no replica has a summary.
func SumReplicas(ctx context.Context, run *blob.Bucket, name string, now time.Time) (sum *RunSummary, ok bool, err error) {
	replicas, err := ListReplicas(ctx, run)
	if err != nil {
		return nil, false, err
	}
	sum = &RunSummary{Summary: Summary{Run: name, Final: true, Updated: now.UTC(), Attempts: []int{}, GPUs: []SummaryGPU{}}, Replicas: map[string]*Summary{}}
	for _, r := range replicas {
		key := ReplicasFolder + "/" + r + "/" + Folder + "/" + SummaryKey
		data, err := run.ReadAll(ctx, key)
		if gcerrors.Code(err) == gcerrors.NotFound {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("read %s: %w", key, err)
		}
		s := &Summary{}
		if err := json.Unmarshal(data, s); err != nil {
			return nil, false, fmt.Errorf("%s: %w", key, err)
		}
		sum.Replicas[r] = s
		sum.add(s)
	}
	return sum, len(sum.Replicas) > 0, nil
}

// ListReplicas returns the names of the run's replicas (rooted at <run>/),
// those with a folder under replicas/, in order: one listing, one level deep.
func ListReplicas(ctx context.Context, run *blob.Bucket) ([]string, error) {
	var replicas []string
	it := run.List(&blob.ListOptions{Prefix: ReplicasFolder + "/", Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return replicas, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s/: %w", ReplicasFolder, err)
		}
		if obj.IsDir {
			replicas = append(replicas, strings.TrimSuffix(obj.Key[len(ReplicasFolder)+1:], "/"))
		}
	}
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

// PutRunSummary writes sum at the run's resources/summary.json.
func PutRunSummary(ctx context.Context, run *blob.Bucket, sum *RunSummary) error {
	data, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	key := Folder + "/" + SummaryKey
	if err := run.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}
