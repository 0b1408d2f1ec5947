package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	stdsync "sync"
	"testing"
	"testing/synctest"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// replicaName is the i-th replica's name: names in order of i.
func replicaName(i int) string { return fmt.Sprintf("worker-%02d", i) }

// putReplicaSummary writes replica i's own summary, as its sampler does at
// the end of its attempt: i+1 core-seconds (plus extra), peak memory i MiB.
func putReplicaSummary(t testing.TB, run *blob.Bucket, i int, attempt int, extra float64) {
	t.Helper()
	s := Summary{Run: "dist", Final: true, Updated: time.Now().UTC(), Attempts: []int{attempt}, Samples: 10 * (i + 1),
		DurationSeconds: float64(10 + i), GPUs: []SummaryGPU{}}
	s.CPU.CoreSeconds = float64(i+1) + extra
	s.Memory.PeakRSSBytes = float64(i << 20)
	key := ReplicasFolder + "/" + replicaName(i) + "/" + Folder + "/" + SummaryKey
	if err := run.WriteAll(context.Background(), key, s.JSON(), nil); err != nil {
		t.Fatal(err)
	}
}

// readRunSummary reads the run's summary.json.
func readRunSummary(t testing.TB, run *blob.Bucket) *RunSummary {
	t.Helper()
	data, err := run.ReadAll(context.Background(), Folder+"/"+SummaryKey)
	if err != nil {
		t.Fatalf("the run's summary: %v", err)
	}
	sum := &RunSummary{}
	if err := json.Unmarshal(data, sum); err != nil {
		t.Fatalf("the run's summary: %v", err)
	}
	return sum
}

// checkSum checks that the run's summary is the exact sum over replicas
// 0..n-1, each with extra[i] core-seconds more, and final.
func checkSum(t testing.TB, run *blob.Bucket, n int, extra map[int]float64) {
	t.Helper()
	sum := readRunSummary(t, run)
	wantCore, wantSamples := 0.0, 0
	for i := range n {
		wantCore += float64(i+1) + extra[i]
		wantSamples += 10 * (i + 1)
		got := sum.Replicas[replicaName(i)]
		if got == nil {
			t.Errorf("the run's summary has no entry for %s", replicaName(i))
			continue
		}
		if want := float64(i+1) + extra[i]; got.CPU.CoreSeconds != want {
			t.Errorf("%s in the run's summary: %v core-seconds, want %v (its last summary)", replicaName(i), got.CPU.CoreSeconds, want)
		}
	}
	if len(sum.Replicas) != n || sum.CPU.CoreSeconds != round(wantCore, 3) || sum.Samples != wantSamples || !sum.Final {
		t.Errorf("the run's summary: %d replicas, %v core-seconds, %d samples, final %v; want %d, %v, %d, true",
			len(sum.Replicas), sum.CPU.CoreSeconds, sum.Samples, sum.Final, n, round(wantCore, 3), wantSamples)
	}
	if want := float64((n - 1) << 20); sum.Memory.PeakRSSBytes != want {
		t.Errorf("the run's peak RSS %v, want %v (the highest replica's)", sum.Memory.PeakRSSBytes, want)
	}
}

// endAtOnce ends n replicas at the same moment, each in its own goroutine.
func endAtOnce(t testing.TB, run *blob.Bucket, n int) {
	t.Helper()
	for i := range n {
		putReplicaSummary(t, run, i, 1, 0)
	}
	var wg stdsync.WaitGroup
	startGate := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-startGate
			errs[i] = EndReplica(context.Background(), run, "dist", replicaName(i))
		})
	}
	close(startGate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", replicaName(i), err)
		}
	}
}

// TestEndReplicasAtOnce: replicas ending at the same moment on the in-memory
// store leave the exact sum over all of them in the run's summary, and the
// requests they make grow with the number of replicas, not its square.
func TestEndReplicasAtOnce(t *testing.T) {
	requests := map[int]int64{}
	for _, n := range []int{8, 16, 32} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			run, counter := storetest.NewFaulty(memblob.OpenBucket(nil), 1)
			run = blob.PrefixedBucket(run, "dist/")
			endAtOnce(t, run, n)
			checkSum(t, run, n, nil)
			// The summaries written for the test.
			requests[n] = counter.Requests.Load() - int64(n)
			t.Logf("%d replicas ending at once: %d requests, %.1f per replica", n, requests[n], float64(requests[n])/float64(n))
		})
	}
	checkLinear(t, requests)
}

// checkLinear checks that the replicas' requests grow linearly with their
// number: a few per replica whatever the number (reading every replica's
// summary at each end would be more than one per replica, N² in all).
func checkLinear(t *testing.T, requests map[int]int64) {
	t.Helper()
	for n, r := range requests {
		if perReplica := float64(r) / float64(n); perReplica > 24 {
			t.Errorf("%d replicas ending at once made %d requests, %.1f per replica; want at most 24 per replica, whatever their number", n, r, perReplica)
		}
	}
}

// TestEndReplicasOneAfterAnother: replicas ending one after the other each
// make the same few requests, however many ended before; a retried replica
// replaces its summary in the sum.
func TestEndReplicasOneAfterAnother(t *testing.T) {
	ctx := context.Background()
	run, counter := storetest.NewFaulty(memblob.OpenBucket(nil), 1)
	run = blob.PrefixedBucket(run, "dist/")
	const n = 40
	for i := range n {
		putReplicaSummary(t, run, i, 1, 0)
	}
	var costs []int64
	for i := range n {
		before := counter.Requests.Load()
		if err := EndReplica(ctx, run, "dist", replicaName(i)); err != nil {
			t.Fatal(err)
		}
		costs = append(costs, counter.Requests.Load()-before)
	}
	// Read own, write its copy, read the run's summary, list the copies,
	// list the replicas, write the run's summary, list the copies again.
	if worst := slices.Max(costs); worst > 7 {
		t.Errorf("a replica's end cost up to %d requests (%v), want at most 7 whatever the number that ended before", worst, costs)
	}
	checkSum(t, run, n, nil)

	// Replica 5 retried: its new summary replaces its first in the sum.
	putReplicaSummary(t, run, 5, 2, 100)
	before := counter.Requests.Load()
	if err := EndReplica(ctx, run, "dist", replicaName(5)); err != nil {
		t.Fatal(err)
	}
	if cost := counter.Requests.Load() - before; cost > 7 {
		t.Errorf("the retried replica's end cost %d requests, want at most 7", cost)
	}
	checkSum(t, run, n, map[int]float64{5: 100})
}

// TestRunSummaryNotFinalWhileAReplicaRuns: a replica that has started (its
// folder is there) and not ended leaves the run's summary not final.
func TestRunSummaryNotFinalWhileAReplicaRuns(t *testing.T) {
	ctx := context.Background()
	run := blob.PrefixedBucket(memblob.OpenBucket(nil), "dist/")
	putReplicaSummary(t, run, 0, 1, 0)
	if err := run.WriteAll(ctx, ReplicasFolder+"/"+replicaName(1)+"/.collector/state.json", []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	if err := EndReplica(ctx, run, "dist", replicaName(0)); err != nil {
		t.Fatal(err)
	}
	if sum := readRunSummary(t, run); sum.Final || len(sum.Replicas) != 1 {
		t.Errorf("the run's summary: final %v, %d replicas; want not final, 1 (worker-01 runs)", sum.Final, len(sum.Replicas))
	}
	putReplicaSummary(t, run, 1, 1, 0)
	if err := EndReplica(ctx, run, "dist", replicaName(1)); err != nil {
		t.Fatal(err)
	}
	checkSum(t, run, 2, nil)
}

// TestEndReplicaTakesOver: a replica that finds a replica named before it
// ended and not summed waits for that one to sum, and sums itself once the
// run's summary has stayed the same for a while (that replica was killed
// before it summed): both are in the sum.
func TestEndReplicaTakesOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		run := blob.PrefixedBucket(memblob.OpenBucket(nil), "dist/")
		for i := range 2 {
			putReplicaSummary(t, run, i, 1, 0)
		}
		// worker-00's copy, made before it was killed.
		data, err := run.ReadAll(ctx, ReplicasFolder+"/"+replicaName(0)+"/"+Folder+"/"+SummaryKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := run.WriteAll(ctx, replicaSummaries+replicaName(0)+".json", data, nil); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := EndReplica(ctx, run, "dist", replicaName(1)); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < patience {
			t.Errorf("worker-01 summed after %v, want after waiting %v for worker-00", waited, patience)
		}
		checkSum(t, run, 2, nil)
	})
}

// TestRunSummaryOfAnEarlierVersion: a run's summary written by an earlier
// version (summed from each replica's folder, no copies, no versions) keeps
// its replicas when a replica ends with this version.
func TestRunSummaryOfAnEarlierVersion(t *testing.T) {
	ctx := context.Background()
	run := blob.PrefixedBucket(memblob.OpenBucket(nil), "dist/")
	for i := range 3 {
		putReplicaSummary(t, run, i, 1, 0)
	}
	earlier := &RunSummary{Summary: Summary{Run: "dist", Final: true}, Replicas: map[string]*Summary{}}
	for i := range 2 {
		data, err := run.ReadAll(ctx, ReplicasFolder+"/"+replicaName(i)+"/"+Folder+"/"+SummaryKey)
		if err != nil {
			t.Fatal(err)
		}
		s := &Summary{}
		if err := json.Unmarshal(data, s); err != nil {
			t.Fatal(err)
		}
		earlier.Replicas[replicaName(i)] = s
	}
	data, _ := json.Marshal(earlier)
	if err := run.WriteAll(ctx, Folder+"/"+SummaryKey, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := EndReplica(ctx, run, "dist", replicaName(2)); err != nil {
		t.Fatal(err)
	}
	checkSum(t, run, 3, nil)
}

// TestEndReplicasAtOnceOnS3: 8, 16 and 32 replicas ending at the same
// moment on the S3 server leave the exact sum in the run's summary; the
// requests, counted the way the server sees them, grow linearly with the
// replicas.
func TestEndReplicasAtOnceOnS3(t *testing.T) {
	f := storetest.S3(t)
	proxy, traffic := storetest.CountingProxy(t, f.Endpoint)
	f.Conn.Schema.Bucket += "?endpoint=" + proxy
	store, err := stores.Open(context.Background(), f.Conn, stores.Options{Getenv: f.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	requests := map[int]int64{}
	for _, n := range []int{8, 16, 32} {
		run := blob.PrefixedBucket(store.Bucket(), fmt.Sprintf("dist%d/", n))
		for i := range n {
			putReplicaSummary(t, run, i, 1, 0)
		}
		traffic.Reset()
		var wg stdsync.WaitGroup
		startGate := make(chan struct{})
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-startGate
				errs[i] = EndReplica(context.Background(), run, "dist", replicaName(i))
			})
		}
		close(startGate)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s: %v", replicaName(i), err)
			}
		}
		requests[n] = int64(traffic.Requests(""))
		t.Logf("%d replicas ending at once on S3: %d requests (%d GET, %d PUT), %.1f per replica", n, requests[n],
			traffic.Requests(http.MethodGet), traffic.Requests(http.MethodPut), float64(requests[n])/float64(n))
		checkSum(t, run, n, nil)
	}
	checkLinear(t, requests)
}

// TestEndReplicasAtOnceOnEachStore: 16 replicas ending at once leave the
// exact sum on every kind of store, whatever its listing gives of a version
// (modification time to the second or finer, an MD5 or none).
func TestEndReplicasAtOnceOnEachStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, f storetest.Fixture) {
		run := blob.PrefixedBucket(f.Open(t), "dist/")
		endAtOnce(t, run, 16)
		checkSum(t, run, 16, nil)
		// A second attempt of each, ending at once again.
		extra := map[int]float64{}
		for i := range 16 {
			extra[i] = 1000
			putReplicaSummary(t, run, i, 2, extra[i])
		}
		var wg stdsync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				if err := EndReplica(context.Background(), run, "dist", replicaName(i)); err != nil {
					t.Errorf("%s: %v", replicaName(i), err)
				}
			})
		}
		wg.Wait()
		checkSum(t, run, 16, extra)
	})
}
