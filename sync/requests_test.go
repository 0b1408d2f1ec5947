package sync

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// inFlight is the most requests the proxy had in flight at once.
func inFlight(log []storetest.Request) int {
	type edge struct {
		at   time.Time
		step int
	}
	var edges []edge
	for _, r := range log {
		end := r.Answered
		if end.IsZero() {
			end = r.Start
		}
		edges = append(edges, edge{r.Start, 1}, edge{end, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.step - b.step // an end before a start at the same instant
	})
	most, n := 0, 0
	for _, e := range edges {
		n += e.step
		most = max(most, n)
	}
	return most
}

// TestSmallFilesOneRequestEachManyInFlight: on S3, each small file is one
// PUT and nothing else (no HEAD, no listing), and small files go up
// --requests at a time, more than --workers, as the server sees them.
func TestSmallFilesOneRequestEachManyInFlight(t *testing.T) {
	f := storetest.S3(t)
	proxy, traffic := storetest.CountingProxy(t, f.Endpoint)
	// Each request's body takes 40 ms to cross the proxy: a store a hop
	// away, so that requests in flight overlap however fast the server is.
	traffic.BytesPerSecond.Store(25 << 10)
	f.Conn.Schema.Bucket += "?endpoint=" + proxy
	store, err := stores.Open(context.Background(), f.Conn, stores.Options{Getenv: f.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	dir := t.TempDir()
	const files = 96
	for i := range files {
		write(t, dir, fmt.Sprintf("d%d/f%03d.bin", i%4, i), strings.Repeat(fmt.Sprintf("%03d", i), 1024/3+1)[:1024])
	}
	cfg := testConfig()
	cfg.Workers, cfg.Requests = 2, 16
	target := store.Target("run/outputs/")
	s, err := New(cfg, dir, target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	traffic.Reset()
	if st := pass(t, s, true); st.Uploaded != files {
		t.Fatalf("pass = %+v; want %d files uploaded", st, files)
	}
	if got, want := traffic.Requests(""), files; got != want {
		t.Errorf("%d requests for %d small files (%d PUT, %d HEAD, %d GET); want one PUT each", got, files,
			traffic.Requests(http.MethodPut), traffic.Requests(http.MethodHead), traffic.Requests(http.MethodGet))
	}
	if got := traffic.Puts("/run/outputs/"); got != files {
		t.Errorf("%d PUTs under run/outputs/, want %d", got, files)
	}
	got := inFlight(traffic.Log())
	if got <= cfg.Workers || got > cfg.Requests {
		t.Errorf("%d requests in flight at most; want more than --workers %d, and at most --requests %d", got, cfg.Workers, cfg.Requests)
	}
	mirrors(t, dir, target.Bucket)
	t.Logf("%d requests in flight at most", got)
}
