package stores_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/stores"
	_ "github.com/mlsidecar/collector/stores/s3"
)

// TestIdleConnsFollowRequests: a store opened for 200 requests at once
// keeps 200 connections for the next 200, where one opened with the
// default keeps stores.IdleConnsPerHost and dials the rest anew.
func TestIdleConnsFollowRequests(t *testing.T) {
	const n = 200
	for _, c := range []struct {
		name      string
		requests  int
		wantDials int // in the second round
	}{{"requests 200", n, 0}, {"default", 0, n - stores.IdleConnsPerHost}} {
		t.Run(c.name, func(t *testing.T) {
			var dials atomic.Int64
			var mu sync.Mutex
			inFlight, all := 0, make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Every HEAD waits for the round's n: n connections at once.
				mu.Lock()
				if inFlight++; inFlight == n {
					close(all)
				}
				wait := all
				mu.Unlock()
				select {
				case <-wait:
				case <-time.After(10 * time.Second):
				}
				w.Header().Set("Content-Length", "4")
				w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
				w.Header().Set("ETag", `"x"`)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					dials.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			conn, err := stores.Resolve("s3://bucket/prefix?endpoint=" + srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			s, err := stores.Open(context.Background(), conn, stores.Options{Requests: c.requests, Getenv: func(name string) string {
				return map[string]string{"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}[name]
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			round := func() int64 {
				mu.Lock()
				inFlight, all = 0, make(chan struct{})
				mu.Unlock()
				before := dials.Load()
				var g errgroup.Group
				for i := range n {
					g.Go(func() error {
						_, err := s.Bucket().Attributes(context.Background(), fmt.Sprintf("k%03d", i))
						return err
					})
				}
				if err := g.Wait(); err != nil {
					t.Fatal(err)
				}
				return dials.Load() - before
			}
			if got := round(); got != n {
				t.Fatalf("first round dialed %d connections, want %d", got, n)
			}
			if got := round(); got != int64(c.wantDials) {
				t.Errorf("second round dialed %d connections, want %d", got, c.wantDials)
			}
		})
	}
}
