package preempt

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name string
		dmi  map[string]string
		env  map[string]string
		want Cloud
	}{
		{name: "not a cloud", dmi: map[string]string{"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}},
		{name: "no dmi at all"},
		{name: "gce", dmi: map[string]string{"product_name": "Google Compute Engine\n", "sys_vendor": "Google"}, want: GCP},
		{name: "gce, short name", dmi: map[string]string{"product_name": "Google"}, want: GCP},
		{name: "ec2 nitro", dmi: map[string]string{"sys_vendor": "Amazon EC2\n", "product_name": "m5.large"}, want: AWS},
		{name: "ec2 xen", dmi: map[string]string{"sys_vendor": "Xen", "bios_version": "4.11.amazon"}, want: AWS},
		{name: "azure", dmi: map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": azureAssetTag + "\n"}, want: Azure},
		{name: "hyper-v, not azure", dmi: map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": "None"}},
		{name: "ec2, metadata disabled", dmi: map[string]string{"sys_vendor": "Amazon EC2"}, env: map[string]string{AWSDisabledEnv: "true"}},
		{name: "aws override", env: map[string]string{AWSEndpointEnv: "http://127.0.0.1:1338"}, want: AWS},
		{name: "gce override", env: map[string]string{GCEHostEnv: "127.0.0.1:8080"}, want: GCP},
		{name: "azure override", env: map[string]string{AzureEndpointEnv: "http://127.0.0.1:8081"}, want: Azure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, v := range tc.dmi {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			getenv := func(k string) string { return tc.env[k] }
			if got := Detect(dir, getenv); got != tc.want {
				t.Errorf("Detect = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range Modes {
		if got, err := ParseMode(m); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	_, err := ParseMode("ec2")
	if err == nil || !strings.Contains(err.Error(), "valid: auto, aws, gcp, azure, off") {
		t.Errorf("ParseMode(ec2): %v", err)
	}
}

// watch runs a Watcher of cloud against the fake server at endpoint, and
// returns its notices as they come.
func watch(t *testing.T, cloud Cloud, env map[string]string) <-chan Notice {
	t.Helper()
	w, err := New(Config{Cloud: cloud, Getenv: func(k string) string { return env[k] }, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	notices := make(chan Notice, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Watch(ctx, func(n Notice) { notices <- n })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return notices
}

func next(t *testing.T, notices <-chan Notice) Notice {
	t.Helper()
	select {
	case n := <-notices:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notice in 10 s")
		return Notice{}
	}
}

// requests counts a fake metadata service's requests as they arrive.
type requests struct {
	mu      stdsync.Mutex
	n       int
	arrived chan struct{} // closed and replaced at each request
}

func (c *requests) count(h http.Handler) http.Handler {
	c.arrived = make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n++
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// reach waits until the service has had want requests in all.
func (c *requests) reach(t *testing.T, want int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got, arrived := c.n, c.arrived
		c.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-arrived:
		case <-timeout:
			t.Fatalf("the service had %d requests in 10 s, want %d", got, want)
		}
	}
}

// none checks that no notice came while the watcher asked the service n
// more times: it asks one thing at a time, so it had read every answer but
// the last, and told what they held.
func none(t *testing.T, notices <-chan Notice, c *requests, n int) {
	t.Helper()
	c.mu.Lock()
	want := c.n + n
	c.mu.Unlock()
	c.reach(t, want)
	select {
	case notice := <-notices:
		t.Fatalf("unexpected notice %+v", notice)
	default:
	}
}

// fakeIMDS speaks EC2's IMDSv2: a token from PUT /latest/api/token (with
// its TTL header), required by every GET; a token revoked answers 401.
type fakeIMDS struct {
	mu        stdsync.Mutex
	tokens    int // tokens handed out
	valid     string
	action    string // the instance-action document; "" is 404
	rebalance string
	tokenless atomic.Int32 // GETs without a valid token
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/latest/api/token":
		if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		f.tokens++
		f.valid = fmt.Sprintf("token-%d", f.tokens)
		fmt.Fprint(w, f.valid)
	case r.Method != http.MethodGet:
		http.Error(w, "", http.StatusMethodNotAllowed)
	case r.Header.Get("X-aws-ec2-metadata-token") != f.valid || f.valid == "":
		f.tokenless.Add(1)
		http.Error(w, "", http.StatusUnauthorized)
	case r.URL.Path == "/latest/meta-data/spot/instance-action" && f.action != "":
		fmt.Fprint(w, f.action)
	case r.URL.Path == "/latest/meta-data/events/recommendations/rebalance" && f.rebalance != "":
		fmt.Fprint(w, f.rebalance)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIMDS) set(fn func()) { f.mu.Lock(); defer f.mu.Unlock(); fn() }

func TestAWS(t *testing.T) {
	f := &fakeIMDS{}
	var reqs requests
	srv := httptest.NewServer(reqs.count(f))
	defer srv.Close()
	notices := watch(t, AWS, map[string]string{AWSEndpointEnv: srv.URL + "/"})
	none(t, notices, &reqs, 5) // 404s: no notice

	f.set(func() {
		f.valid = "" // the token expires: the watcher gets a new one
		f.rebalance = `{"noticeTime": "2026-12-06T05:00:00Z"}`
	})
	n := next(t, notices)
	if n.Cloud != AWS || n.Kind != Rebalance || !n.Deadline.IsZero() {
		t.Errorf("rebalance notice = %+v", n)
	}
	f.set(func() { f.action = `{"action": "terminate", "time": "2026-12-06T05:02:00Z"}` })
	n = next(t, notices)
	want := time.Date(2026, 12, 6, 5, 2, 0, 0, time.UTC)
	if n.Kind != Interruption || !n.Deadline.Equal(want) || n.Detail != "terminate" {
		t.Errorf("interruption notice = %+v, want the deadline %v and terminate", n, want)
	}
	none(t, notices, &reqs, 5) // each once
	f.set(func() {
		if f.tokens < 2 {
			t.Errorf("%d tokens asked for, want a new one after the first was revoked", f.tokens)
		}
	})
}

func TestGCE(t *testing.T) {
	var preempted atomic.Bool
	changed := make(chan struct{})
	hanging := make(chan struct{}) // closed at the first GET that waits for a change
	var hangingOnce stdsync.Once
	var reqs requests
	srv := httptest.NewServer(reqs.count(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Path != "/computeMetadata/v1/instance/preempted" {
			http.Error(w, "", http.StatusForbidden)
			return
		}
		if r.URL.Query().Get("wait_for_change") == "true" {
			if r.URL.Query().Get("last_etag") == "" {
				http.Error(w, "", http.StatusBadRequest)
				return
			}
			hangingOnce.Do(func() { close(hanging) })
			select { // hangs until the value changes
			case <-changed:
			case <-r.Context().Done():
				return
			}
		}
		if preempted.Load() {
			w.Header().Set("ETag", "etag-2")
			fmt.Fprint(w, "TRUE")
			return
		}
		w.Header().Set("ETag", "etag-1")
		fmt.Fprint(w, "FALSE")
	})))
	defer srv.Close()
	notices := watch(t, GCP, map[string]string{GCEHostEnv: strings.TrimPrefix(srv.URL, "http://")})
	select { // FALSE, then a GET that hangs until the value changes
	case <-hanging:
	case <-time.After(10 * time.Second):
		t.Fatal("no hanging GET (wait_for_change=true, last_etag) in 10 s after the first answer")
	}
	none(t, notices, &reqs, 0)
	preempted.Store(true)
	close(changed)
	at := time.Now()
	n := next(t, notices)
	if n.Cloud != GCP || n.Kind != Interruption {
		t.Errorf("notice = %+v", n)
	}
	if d := n.Deadline.Sub(at); d < 29*time.Second || d > 31*time.Second {
		t.Errorf("deadline %v after the notice, want 30 s", d)
	}
	none(t, notices, &reqs, 3)
}

func TestAzure(t *testing.T) {
	var doc atomic.Value
	doc.Store(`{"DocumentIncarnation": 1, "Events": [{"EventId": "A", "EventType": "Freeze", "EventStatus": "Scheduled", "NotBefore": "Sun, 06 Dec 2026 05:10:00 GMT"}]}`)
	var reqs requests
	srv := httptest.NewServer(reqs.count(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" || r.URL.Path != "/metadata/scheduledevents" || r.URL.Query().Get("api-version") != "2020-07-01" {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, doc.Load())
	})))
	defer srv.Close()
	notices := watch(t, Azure, map[string]string{AzureEndpointEnv: srv.URL})
	none(t, notices, &reqs, 3) // a Freeze is no preemption
	doc.Store(`{"DocumentIncarnation": 2, "Events": [{"EventId": "B", "EventType": "Preempt", "ResourceType": "VirtualMachine", "Resources": ["vm1"], "EventStatus": "Scheduled", "NotBefore": "Sun, 06 Dec 2026 05:00:30 GMT", "Description": "", "EventSource": "Platform", "DurationInSeconds": -1}]}`)
	n := next(t, notices)
	want := time.Date(2026, 12, 6, 5, 0, 30, 0, time.UTC)
	if n.Cloud != Azure || n.Kind != Interruption || !n.Deadline.Equal(want) || n.Detail != "B" {
		t.Errorf("notice = %+v, want event B at %v", n, want)
	}
	none(t, notices, &reqs, 3) // once, though polled again
}

// A metadata service that fails is logged once, not at each try: WARN for
// a cloud named, INFO for one found by Detect (a sandbox may hide it).
func TestFailureLoggedOnce(t *testing.T) {
	for _, detected := range []bool{false, true} {
		t.Run(fmt.Sprint("detected=", detected), func(t *testing.T) {
			var tries atomic.Int32
			fourth := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tries.Add(1) == 4 {
					close(fourth)
				}
				http.Error(w, "", http.StatusInternalServerError)
			}))
			defer srv.Close()
			var buf syncBuffer
			w, err := New(Config{Cloud: Azure, Getenv: func(string) string { return srv.URL }, Poll: time.Millisecond,
				Detected: detected, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); w.Watch(ctx, func(Notice) {}) }()
			select {
			case <-fourth:
			case <-time.After(10 * time.Second):
				t.Fatalf("%d tries in 10 s, want 4", tries.Load())
			}
			cancel()
			<-done
			warn, info := strings.Count(buf.String(), "level=WARN"), strings.Count(buf.String(), "level=INFO")
			if want := map[bool][2]int{false: {1, 0}, true: {0, 1}}[detected]; warn != want[0] || info != want[1] {
				t.Errorf("%d tries: %d WARN and %d INFO lines, want %d and %d:\n%s", tries.Load(), warn, info, want[0], want[1], buf.String())
			}
		})
	}
}

type syncBuffer struct {
	mu stdsync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
