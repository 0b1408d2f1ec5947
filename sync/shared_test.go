package sync

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/stores"
)

// replica is one replica's Syncer on a shared bucket, with its own folder
// and log.
type replica struct {
	name string
	dir  string
	s    *Syncer
	log  *bytes.Buffer
}

func newReplica(t *testing.T, b *blob.Bucket, name string) *replica {
	t.Helper()
	r := &replica{name: name, dir: t.TempDir(), log: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(testConfig(), r.dir, stores.Target{Bucket: b}.ForReplica(name), Options{Shared: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	return r
}

// write writes rel in the replica's folder and syncs it.
func (r *replica) write(t *testing.T, rel, data string) {
	t.Helper()
	write(t, r.dir, rel, data)
	if st := pass(t, r.s, true); st.Failed+st.Pending != 0 {
		t.Fatalf("%s: pass = %+v", r.name, st)
	}
}

// object returns what the store holds at key and the replica named in its
// metadata.
func object(t *testing.T, b *blob.Bucket, key string) (data, owner string) {
	t.Helper()
	got, err := b.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	attrs, err := b.Attributes(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(got), attrs.Metadata[stores.ReplicaMetadataKey]
}

// permutations returns every order of names.
func permutations(names []string) [][]string {
	if len(names) <= 1 {
		return [][]string{names}
	}
	var out [][]string
	for i, n := range names {
		rest := append(append([]string(nil), names[:i]...), names[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{n}, p...))
		}
	}
	return out
}

// TestLowestReplicaKeepsTheSharedPath: two and three replicas write one path,
// in every order: the lowest name's bytes are at the path, each other's at
// <path>.replica-<name>, each object names its replica, nothing else is in
// the store, and each replica that diverts or is displaced warns once,
// naming both replicas and both keys. A later change of a higher replica's
// file goes to its own key, never to the path.
func TestLowestReplicaKeepsTheSharedPath(t *testing.T) {
	for _, names := range [][]string{{"chief-0", "worker-0"}, {"rank-0", "rank-1", "rank-2"}} {
		for _, order := range permutations(names) {
			t.Run(strings.Join(order, ","), func(t *testing.T) {
				ctx := context.Background()
				b := memblob.OpenBucket(nil)
				rs := map[string]*replica{}
				for _, n := range order {
					rs[n] = newReplica(t, b, n)
					rs[n].write(t, "model.pt", "weights of "+n)
				}
				lowest := names[0]
				want := map[string]string{"model.pt": "weights of " + lowest}
				for _, n := range names[1:] {
					want["model.pt.replica-"+n] = "weights of " + n
				}
				check := func() {
					t.Helper()
					got := map[string]string{}
					for key := range want {
						data, owner := object(t, b, key)
						got[key] = data
						if wantOwner := strings.TrimPrefix(key, "model.pt.replica-"); key != "model.pt" && owner != wantOwner || key == "model.pt" && owner != lowest {
							t.Errorf("%s names replica %q", key, owner)
						}
					}
					for key, data := range want {
						if got[key] != data {
							t.Errorf("%s holds %q, want %q", key, got[key], data)
						}
					}
					if all := keys(objectsOf(t, b)); len(all) != len(want) {
						t.Errorf("store holds %v, want %d objects", all, len(want))
					}
				}
				check()
				// Each warning names both replicas and both keys.
				for _, n := range names {
					for _, line := range strings.Split(rs[n].log.String(), "\n") {
						if !strings.Contains(line, "another replica writes") {
							continue
						}
						var kept, copyOf string
						for _, f := range strings.Fields(line) {
							if v, ok := strings.CutPrefix(f, "kept_by="); ok {
								kept = v
							}
							if v, ok := strings.CutPrefix(f, "copy_of="); ok {
								copyOf = v
							}
						}
						if kept == "" || copyOf <= kept || !strings.Contains(line, "kept_key=model.pt ") || !strings.Contains(line, "copy_key=model.pt.replica-"+copyOf) {
							t.Errorf("%s's warning does not name both replicas and keys: %s", n, line)
						}
					}
				}
				// A later change of each higher replica's file: to its
				// own key, the path untouched, no new warning.
				for _, n := range names[1:] {
					rs[n].write(t, "model.pt", "new weights of "+n)
					want["model.pt.replica-"+n] = "new weights of " + n
					if e := rs[n].s.Manifest()["model.pt"]; e == nil || e.Key != "model.pt.replica-"+n {
						t.Errorf("%s's manifest entry = %+v, want its key model.pt.replica-%s", n, e, n)
					}
				}
				check()
				// Each higher replica warned once, when it found the path
				// taken (at its write, or at its change after it was
				// displaced).
				for _, n := range names[1:] {
					if got := strings.Count(rs[n].log.String(), "another replica writes this output's path too"); got != 1 {
						t.Errorf("%s warned %d times, want once:\n%s", n, got, rs[n].log)
					}
					if got := rs[n].s.Diverted(); got != 1 {
						t.Errorf("%s counts %d shared paths (collector_outputs_shared_paths_total), want 1", n, got)
					}
				}
				// A higher replica deletes its file: its copy goes, the
				// path stays the lowest's.
				high := rs[names[len(names)-1]]
				must(t, os.Remove(filepath.Join(high.dir, "model.pt")))
				pass(t, high.s, true)
				delete(want, "model.pt.replica-"+high.name)
				check()
				if ok, _ := b.Exists(ctx, "model.pt.replica-"+high.name); ok {
					t.Errorf("%s's copy is still in the store after its file was deleted", high.name)
				}
			})
		}
	}
}

// objectsOf lists the bucket's keys.
func objectsOf(t *testing.T, b *blob.Bucket) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	it := b.List(nil)
	for {
		obj, err := it.Next(context.Background())
		if err != nil {
			break
		}
		out[obj.Key] = nil
	}
	return out
}

// TestRecheckFindsAWriteWithinARoundTrip: two replicas that both found the
// path free wrote it one after the other (a write without the look before,
// as within a round trip). The final sync's recheck of the lower one, whose
// object the higher one's replaced, stores it again with the higher one's
// moved aside; that of the higher one, whose object the lower one's
// replaced, stores its copy under its own key.
func TestRecheckFindsAWriteWithinARoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, last := range []string{"a", "b"} {
		t.Run(last+" last", func(t *testing.T) {
			b := memblob.OpenBucket(nil)
			first := map[string]string{"a": "b", "b": "a"}[last]
			r := newReplica(t, b, first)
			r.write(t, "m.pt", "weights of "+first)
			// The other replica's blind write over it.
			must(t, b.WriteAll(ctx, "m.pt", []byte("weights of "+last), &blob.WriterOptions{Metadata: map[string]string{stores.ReplicaMetadataKey: last}}))
			if err := r.s.RunShared(canceled(), ctx); err != nil {
				t.Fatal(err)
			}
			if last == "b" {
				// a, lower, stored again; b's moved aside.
				for key, want := range map[string]string{"m.pt": "weights of a", "m.pt.replica-b": "weights of b"} {
					if data, _ := object(t, b, key); data != want {
						t.Errorf("%s = %q, want %q", key, data, want)
					}
				}
				return
			}
			// b, higher, finds a's at the path: its copy at its own key.
			for key, want := range map[string]string{"m.pt": "weights of a", "m.pt.replica-b": "weights of b"} {
				if data, _ := object(t, b, key); data != want {
					t.Errorf("%s = %q, want %q", key, data, want)
				}
			}
			if e := r.s.Manifest()["m.pt"]; e == nil || e.Key != "m.pt.replica-b" {
				t.Errorf("b's manifest entry = %+v, want key m.pt.replica-b", e)
			}
		})
	}
}

// canceled is a context that has ended: Run goes straight to its final sync.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestRecheckRecordsACopyMovedAside: a lower replica took a path a higher
// one stored, moving the higher one's object aside; the higher one's final
// sync finds its copy there and records its key without storing it again,
// and warns once.
func TestRecheckRecordsACopyMovedAside(t *testing.T) {
	b := memblob.OpenBucket(nil)
	high := newReplica(t, b, "worker-1")
	high.write(t, "m.pt", "weights of worker-1")
	low := newReplica(t, b, "chief-0")
	low.write(t, "m.pt", "weights of chief-0")
	if err := high.s.RunShared(canceled(), context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := high.s.Manifest()["m.pt"]; e == nil || e.Key != "m.pt.replica-worker-1" {
		t.Errorf("worker-1's manifest entry = %+v, want key m.pt.replica-worker-1", e)
	}
	if got := high.s.Totals().UploadedFiles; got != 1 {
		t.Errorf("worker-1 uploaded %d files, want 1: its copy was moved aside, not stored again", got)
	}
	for key, want := range map[string]string{"m.pt": "weights of chief-0", "m.pt.replica-worker-1": "weights of worker-1"} {
		if data, _ := object(t, b, key); data != want {
			t.Errorf("%s = %q, want %q", key, data, want)
		}
	}
	if got := strings.Count(high.log.String(), "another replica writes this output's path too"); got != 1 {
		t.Errorf("worker-1 warned %d times, want once:\n%s", got, high.log)
	}
}
