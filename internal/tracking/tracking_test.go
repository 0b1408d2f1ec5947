package tracking

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	stdsync "sync"
	"testing"
	"time"
)

type api struct {
	mu       stdsync.Mutex
	statuses []Status
	auth     []string
	running  chan struct{} // a send at each Running status while it has room, if made
}

func (a *api) handler(w http.ResponseWriter, r *http.Request) {
	var st Status
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.statuses = append(a.statuses, st)
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	a.mu.Unlock()
	if st.Status == Running && a.running != nil {
		select {
		case a.running <- struct{}{}:
		default:
		}
	}
}

func (a *api) got() ([]Status, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Status(nil), a.statuses...), append([]string(nil), a.auth...)
}

func TestReportAndHeartbeat(t *testing.T) {
	a := api{running: make(chan struct{}, 2)}
	srv := httptest.NewServer(http.HandlerFunc(a.handler))
	defer srv.Close()
	r := New(srv.URL, "s3cret", nil)
	code := 3
	base := Status{Run: "r1", Attempt: 2, Mode: "wrapper"}
	st := base
	st.Status = Started
	if err := r.Report(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Heartbeat(ctx, base, 20*time.Millisecond); close(done) }()
	for range 2 {
		select {
		case <-a.running:
		case <-time.After(10 * time.Second):
			t.Fatal("fewer than 2 heartbeats in 10 s")
		}
	}
	cancel()
	<-done
	end := base
	end.Status, end.ExitCode, end.Resources = Failed, &code, json.RawMessage(`{"cpu_cores_peak":1.5}`)
	if err := r.Report(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	statuses, auth := a.got()
	if len(statuses) < 4 || statuses[0].Status != Started || statuses[1].Status != Running || statuses[len(statuses)-1].Status != Failed {
		t.Fatalf("statuses = %+v, want started, running..., failed", statuses)
	}
	last := statuses[len(statuses)-1]
	if last.Run != "r1" || last.Attempt != 2 || last.ExitCode == nil || *last.ExitCode != 3 || string(last.Resources) != `{"cpu_cores_peak":1.5}` || last.Time.IsZero() {
		t.Errorf("final status = %+v", last)
	}
	for _, h := range auth {
		if h != "Bearer s3cret" {
			t.Fatalf("Authorization = %q, want the bearer token", h)
		}
	}
}

func TestNoTokenNoAuthorization(t *testing.T) {
	var a api
	srv := httptest.NewServer(http.HandlerFunc(a.handler))
	defer srv.Close()
	if err := New(srv.URL, "", nil).Report(context.Background(), Status{Run: "r", Status: Started}); err != nil {
		t.Fatal(err)
	}
	if _, auth := a.got(); len(auth) != 1 || auth[0] != "" {
		t.Errorf("Authorization = %q, want none", auth)
	}
}

// A slow or failing API costs at most the timeout, and says why.
func TestFailingAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	err := New(srv.URL, "", nil).Report(context.Background(), Status{Run: "r", Status: Started})
	if err == nil || err.Error() != "the API answered 503 Service Unavailable" {
		t.Errorf("err = %v", err)
	}
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := New(slow.URL, "", nil).Report(ctx, Status{Run: "r", Status: Started}); err == nil {
		t.Error("a hanging API reported success")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a hanging API held the report %v", took)
	}
}
