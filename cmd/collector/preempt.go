package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	stdsync "sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/preempt"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/spool"
	"github.com/mlsidecar/collector/sync"
)

// preemption is the settings of the cloud's preemption notice.
type preemption struct {
	// Notice is auto, aws, gcp, azure or off.
	Notice string
	// Signal is the signal the wrapped command gets on a notice, or none.
	Signal string
}

func defaultPreemption() preemption {
	return preemption{Notice: preempt.Auto, Signal: "SIGUSR1"}
}

func (p *preemption) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&p.Notice, "preemption-notice", p.Notice, "act on the cloud's notice that the machine is taken back (sync at once, newest first, signal the command): auto (the cloud the machine is on, if any), aws, gcp, azure or off")
	fs.StringVar(&p.Signal, "preemption-signal", p.Signal, "the signal the wrapped command gets on a preemption notice: SIGUSR1, SIGUSR2, SIGINT, SIGTERM, SIGHUP, or none")
}

func (p *preemption) validate() error {
	if _, err := preempt.ParseMode(p.Notice); err != nil {
		return fmt.Errorf("--preemption-notice: %v", err)
	}
	if _, err := parseSignal(p.Signal); err != nil {
		return fmt.Errorf("--preemption-signal: %v", err)
	}
	return nil
}

// signals are the signals --preemption-signal can name.
var signals = map[string]syscall.Signal{
	"SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2, "SIGINT": syscall.SIGINT,
	"SIGTERM": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP,
}

// parseSignal reads a signal's name (SIGUSR1 or USR1, any case); none
// (or off) is no signal, 0.
func parseSignal(name string) (syscall.Signal, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "NONE" || n == "OFF" {
		return 0, nil
	}
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if sig, ok := signals[n]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal it sends; valid: SIGUSR1, SIGUSR2, SIGINT, SIGTERM, SIGHUP, none", name)
}

// hurried is what a notice hurries: set by components as it builds them.
type hurried struct {
	outputs *sync.Syncer
	spool   *spool.Spool
}

// preemptionComponent returns the component that watches the cloud's
// notice, or nil when there is none to watch (off, or auto off a cloud).
func (c *collector) preemptionComponent(keeper *resume.Keeper) component {
	cloud := preempt.Cloud(c.set.Preemption.Notice)
	switch c.set.Preemption.Notice {
	case preempt.Off:
		return nil
	case preempt.Auto:
		if cloud = preempt.Detect(preempt.DMIDir, c.getenv); cloud == "" {
			c.log.Debug("not on a cloud this collector knows: no preemption notice to watch")
			return nil
		}
	}
	w, err := preempt.New(preempt.Config{Cloud: cloud, Getenv: c.getenv, Logger: c.log, Detected: c.set.Preemption.Notice == preempt.Auto})
	if err != nil {
		c.log.Warn("cannot watch the cloud's preemption notice", "err", err)
		return nil
	}
	sig, _ := parseSignal(c.set.Preemption.Signal)
	p := &preemptionWatch{w: w, log: c.log.With("component", "preemption"), hurried: c.hurried, keeper: keeper, signal: sig}
	c.probe.Metrics.MustRegister(p)
	p.log.Info("watching the cloud's preemption notice", "cloud", string(cloud), "endpoint", w.Endpoint())
	return componentFunc{name: "preemption", run: p.run}
}

// preemptionWatch acts on the cloud's notices.
type preemptionWatch struct {
	w       *preempt.Watcher
	log     *slog.Logger
	hurried hurried
	keeper  *resume.Keeper
	signal  syscall.Signal

	mu       stdsync.Mutex
	notices  map[preempt.Kind]bool
	deadline time.Time
}

// afterNotice is the time between the outputs passes that follow an
// interruption notice until the run ends, so that what the job writes then
// (the checkpoint the signal asked for) goes up without waiting for the
// interval.
const afterNotice = time.Second

// run watches until stop ends. A notice's work runs under deadline: a
// SIGTERM does not cut it short (the shutdown budget does), and the final
// sync waits for its pass.
func (p *preemptionWatch) run(stop, deadline context.Context) error {
	notices := make(chan preempt.Notice, 4)
	ctx, cancel := context.WithCancel(stop)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		p.w.Watch(ctx, func(n preempt.Notice) {
			select {
			case notices <- n:
			case <-ctx.Done():
			}
		})
	}()
	defer func() { cancel(); <-watched }()
	var follow <-chan time.Time
	for {
		select {
		case <-stop.Done():
			return nil
		case n := <-notices:
			p.act(deadline, n)
			if n.Kind == preempt.Interruption && follow == nil {
				t := time.NewTicker(afterNotice)
				defer t.Stop()
				follow = t.C
			}
		case <-follow:
			if p.hurried.outputs != nil {
				if _, err := p.hurried.outputs.Pass(deadline, false); err != nil && deadline.Err() == nil {
					p.log.Warn("sync pass after the preemption notice failed", "err", err)
				}
			}
		}
	}
}

// act is what a notice sets off: the signal to the command, the spool's
// chunks sealed and sent, a pass of the outputs at once (newest first), the
// state saved.
func (p *preemptionWatch) act(ctx context.Context, n preempt.Notice) {
	start := time.Now()
	p.mu.Lock()
	if p.notices == nil {
		p.notices = map[preempt.Kind]bool{}
	}
	p.notices[n.Kind] = true
	if n.Kind == preempt.Interruption {
		p.deadline = n.Deadline
	}
	p.mu.Unlock()
	attrs := []any{"cloud", string(n.Cloud), "kind", string(n.Kind)}
	if !n.Deadline.IsZero() {
		attrs = append(attrs, "deadline", n.Deadline.UTC().Format(time.RFC3339), "in", time.Until(n.Deadline).Round(time.Second).String())
	}
	if n.Detail != "" {
		attrs = append(attrs, "detail", n.Detail)
	}
	if n.Kind == preempt.Interruption {
		signaled := p.signal != 0 && child.SignalRunning(p.signal)
		if signaled {
			attrs = append(attrs, "signaled", p.signal.String())
		}
		p.log.Warn("the cloud takes this machine back: syncing now, newest files first", attrs...)
	} else {
		p.log.Info("the cloud recommends leaving this machine: syncing now, newest files first", attrs...)
	}
	if p.hurried.spool != nil {
		p.hurried.spool.Rush()
	}
	var st sync.PassStats
	if p.hurried.outputs != nil {
		var err error
		if st, err = p.hurried.outputs.Rush(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("sync pass on the preemption notice failed", "err", err)
		}
	}
	if err := p.keeper.Flush(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("cannot save the state on the preemption notice", "err", err)
	}
	p.log.Info("synced on the preemption notice", "uploaded", st.Uploaded, "bytes", st.Bytes,
		"failed", st.Failed, "took", time.Since(start).Round(time.Millisecond).String())
}

var (
	preemptionNotice   = prometheus.NewDesc("collector_preemption_notice", "1 once the cloud gave a notice of that kind (interruption: the machine is taken back; rebalance: EC2 recommends leaving it), else 0.", []string{"cloud", "kind"}, nil)
	preemptionDeadline = prometheus.NewDesc("collector_preemption_deadline_timestamp_seconds", "When the cloud takes the machine back, as its interruption notice says (Unix time); absent before a notice.", []string{"cloud"}, nil)
)

func (p *preemptionWatch) Describe(ch chan<- *prometheus.Desc) {
	ch <- preemptionNotice
	ch <- preemptionDeadline
}

func (p *preemptionWatch) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cloud := string(p.w.Cloud())
	for _, kind := range []preempt.Kind{preempt.Interruption, preempt.Rebalance} {
		if v := boolValue(p.notices[kind]); v > 0 || kind == preempt.Interruption {
			ch <- prometheus.MustNewConstMetric(preemptionNotice, prometheus.GaugeValue, v, cloud, string(kind))
		}
	}
	if !p.deadline.IsZero() {
		ch <- prometheus.MustNewConstMetric(preemptionDeadline, prometheus.GaugeValue, float64(p.deadline.UnixNano())/1e9, cloud)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
