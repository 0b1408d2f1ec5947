package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Probe tells whether the collector is ready, and serves its metrics.
type Probe struct {
	ready     atomic.Bool
	readyFile string
	addr      string
	log       *slog.Logger
	// Metrics is the registry /metrics serves; components register their
	// collectors in it as they start.
	Metrics *prometheus.Registry
}

// New returns a Probe that serves on addr (none when empty) and writes
// readyFile (none when empty) once ready.
func New(addr, readyFile string, log *slog.Logger) *Probe {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Probe{addr: addr, readyFile: readyFile, log: log.With("component", "probe"), Metrics: reg}
}

// SetReady marks the collector ready and writes the ready file.
func (p *Probe) SetReady() error {
	p.ready.Store(true)
	if p.readyFile == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p.readyFile), 0o755); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.WriteFile(p.readyFile, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// Ready reports whether SetReady was called.
func (p *Probe) Ready() bool { return p.ready.Load() }

// Handler serves /readyz (503 until ready), /healthz (always 200) and
// /metrics (Prometheus' text format).
func (p *Probe) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.Metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.Ready() {
			http.Error(w, "restoring", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Listen binds the address, so a bad one fails at start-up.
func (p *Probe) Listen() (net.Listener, error) {
	if p.addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("--probe-addr: %w", err)
	}
	return l, nil
}

// Serve serves the handler on l until ctx ends; a nil l serves nothing.
func (p *Probe) Serve(ctx context.Context, l net.Listener) error {
	if l == nil {
		<-ctx.Done()
		return nil
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Remove deletes the ready file, so a restarted collector is not taken as
// ready before it restored.
func (p *Probe) Remove() {
	if p.readyFile != "" {
		_ = os.Remove(p.readyFile)
	}
}
