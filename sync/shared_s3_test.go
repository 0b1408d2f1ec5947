package sync

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestReplicaRequestsOnS3: on the S3 server, a replica stores a small file
// in one HEAD and one PUT; a path another, lower replica holds is stored at
// the replica's own key in as many, and its later change in one PUT, with
// no HEAD; the final sync's recheck is one HEAD per path the replica stored
// under its own name in the attempt. The bytes are where the rule puts
// them.
func TestReplicaRequestsOnS3(t *testing.T) {
	f := storetest.S3(t)
	proxy, traffic := storetest.CountingProxy(t, f.Endpoint)
	f.Conn.Schema.Bucket += "?endpoint=" + proxy
	store, err := stores.Open(context.Background(), f.Conn, stores.Options{Getenv: f.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	const files = 10
	syncer := func(name string) (*Syncer, string) {
		dir := t.TempDir()
		for i := range files {
			write(t, dir, fmt.Sprintf("%s/f%02d.txt", name, i), name)
		}
		write(t, dir, "shared.txt", "from "+name)
		s, err := New(testConfig(), dir, store.Target("run/outputs/").ForReplica(name), Options{Shared: true})
		if err != nil {
			t.Fatal(err)
		}
		return s, dir
	}
	counts := func() string {
		return fmt.Sprintf("%d requests: %d HEAD, %d PUT, %d GET", traffic.Requests(""), traffic.Requests(http.MethodHead),
			traffic.Requests(http.MethodPut), traffic.Requests(http.MethodGet))
	}
	a, _ := syncer("a")
	b, bdir := syncer("b")
	for _, s := range []*Syncer{a, b} {
		traffic.Reset()
		if st := pass(t, s, true); st.Uploaded != files+1 {
			t.Fatalf("pass = %+v", st)
		}
		if traffic.Requests(http.MethodHead) != files+1 || traffic.Requests(http.MethodPut) != files+1 || traffic.Requests("") != 2*(files+1) {
			t.Errorf("%d new small files: %s; want one HEAD and one PUT each", files+1, counts())
		}
	}
	traffic.Reset()
	write(t, bdir, "shared.txt", "b again")
	if st := pass(t, b, true); st.Uploaded != 1 || traffic.Requests("") != 1 || traffic.Requests(http.MethodPut) != 1 {
		t.Errorf("b's change of its copy of the shared path: %+v, %s; want one PUT", st, counts())
	}
	traffic.Reset()
	if redo, err := a.Recheck(context.Background()); err != nil || redo != 0 {
		t.Fatalf("a's recheck = %d, %v", redo, err)
	}
	if traffic.Requests(http.MethodHead) != files+1 || traffic.Requests("") != files+1 {
		t.Errorf("a's recheck of %d paths: %s; want one HEAD each", files+1, counts())
	}
	got := storetest.Objects(t, f.Open(t), "run/outputs/")
	for key, want := range map[string]string{"shared.txt": "from a", "shared.txt.replica-b": "b again", "a/f00.txt": "a", "b/f09.txt": "b"} {
		if string(got[key]) != want {
			t.Errorf("%s = %q, want %q", key, got[key], want)
		}
	}
	if len(got) != 2*files+2 {
		t.Errorf("the store holds %d objects, want %d", len(got), 2*files+2)
	}
}
