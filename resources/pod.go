package resources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PodAPI reads the collector's own pod from the Kubernetes API
// (internal/kube's Client; a fake API server in tests). The service
// account needs get on pods, as for the k8s: log source.
type PodAPI interface {
	GetPod(ctx context.Context, v any) error
}

// podReadEvery is how often the pod is read at most: every sample asks the
// API server only when samples are this far apart. (A variable for tests.)
var podReadEvery = 10 * time.Second

// podTimeout bounds one read of the pod.
const podTimeout = 5 * time.Second

// Pod measures the job's containers as the Kubernetes API reports them: a
// native sidecar cannot read their cgroups, so their memory and CPU limits,
// restarts, exit codes and OOM kills come from the pod's spec and status.
// The job's containers are the pod's containers (spec.containers): with the
// collector as a native sidecar, an init container, they are the job's.
//
// A container's terminations are counted once each: the API shows the
// current instance's (state.terminated) and the previous one's
// (lastState.terminated), and every instance before the current one has
// terminated. A collector that starts again in the same pod goes on from
// what the run's aggregates counted of that pod (seen).
type Pod struct {
	api PodAPI
	log *slog.Logger
	// seen, at the first read, gives the terminations already counted of
	// each container of the pod uid.
	seen  func(uid, name string) map[string]int
	every time.Duration
	// finalWait is how long the last sample waits for the job's
	// containers to show as terminated: the kubelet stops the sidecar
	// once they have, and may report it to the API server a moment later.
	finalWait time.Duration

	seeded  bool
	counted map[string]int // terminations counted, by container
	read    time.Time      // of the last read
	last    *k8sPod
	final   bool
}

// The parts of a pod the source reads.
type k8sPod struct {
	Metadata struct {
		Name              string     `json:"name"`
		UID               string     `json:"uid"`
		DeletionTimestamp *time.Time `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		Containers []struct {
			Name      string `json:"name"`
			Resources struct {
				Limits map[string]string `json:"limits"`
			} `json:"resources"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		ContainerStatuses []k8sStatus `json:"containerStatuses"`
	} `json:"status"`
}

type k8sStatus struct {
	Name         string   `json:"name"`
	RestartCount int      `json:"restartCount"`
	State        k8sState `json:"state"`
	LastState    k8sState `json:"lastState"`
}

type k8sState struct {
	Terminated *struct {
		ExitCode int    `json:"exitCode"`
		Reason   string `json:"reason"`
	} `json:"terminated"`
}

// NewPod reads the pod once: a pod the API refuses for good (no such pod,
// no permission) is absent; one it cannot reach now is read again at the
// samples. seen is called at the first read that succeeds.
func NewPod(api PodAPI, log *slog.Logger, seen func(uid, name string) map[string]int) (*Pod, error) {
	p := &Pod{api: api, log: log, seen: seen, every: podReadEvery, finalWait: 3 * time.Second, counted: map[string]int{}}
	pod, err := p.get(context.Background())
	var perm interface{ Permanent() bool }
	if errors.As(err, &perm) && perm.Permanent() {
		return nil, fmt.Errorf("no pod status: %w", err)
	}
	if err == nil {
		p.last = pod
	}
	return p, nil
}

// Name implements Source.
func (p *Pod) Name() string { return "pod status" }

// Describe says what the source reads, for the start's log line.
func (p *Pod) Describe() string {
	if p.last == nil {
		return "pod status (not read yet)"
	}
	names := make([]string, len(p.last.Spec.Containers))
	for i, c := range p.last.Spec.Containers {
		names[i] = c.Name
	}
	return fmt.Sprintf("pod status of %s (containers %s)", p.last.Metadata.Name, strings.Join(names, ", "))
}

// Final makes the next sample read the pod, waiting a moment for the job's
// containers to show as terminated: it is the last.
func (p *Pod) Final() { p.final = true }

func (p *Pod) get(ctx context.Context) (*k8sPod, error) {
	ctx, cancel := context.WithTimeout(ctx, podTimeout)
	defer cancel()
	var pod k8sPod
	if err := p.api.GetPod(ctx, &pod); err != nil {
		return nil, err
	}
	return &pod, nil
}

// Sample implements Source. For each of the job's containers, c its name
// with '-' as '_': k8s_c_memory_limit_bytes and k8s_c_cpu_limit_cores
// (when limited), k8s_c_restarts, k8s_c_exit_code (of its last
// termination, once it has one), and over the interval k8s_c_terminations
// and k8s_c_oom_kills (terminated with reason OOMKilled).
func (p *Pod) Sample(s *Sample) error {
	fresh := false
	if p.final || p.last == nil || s.Time.Sub(p.read) >= p.every {
		pod, err := p.get(context.Background())
		if p.final && err == nil {
			// The last sample: wait a moment for the job's containers to
			// show as terminated, unless the pod is being deleted (they
			// are stopped with it).
			for end := time.Now().Add(p.finalWait); !pod.terminated() && pod.Metadata.DeletionTimestamp == nil && time.Now().Before(end); {
				time.Sleep(min(500*time.Millisecond, time.Until(end)))
				if next, err := p.get(context.Background()); err == nil {
					pod = next
				}
			}
		}
		p.final = false
		if err != nil {
			if p.last == nil {
				return err
			}
		} else {
			p.read, fresh, p.last = s.Time, true, pod
		}
		if fresh && !p.seeded && p.seen != nil {
			// What was counted of this pod already (by a collector that
			// ran in it before this one).
			p.seeded = true
			for c, n := range p.seen(pod.Metadata.UID, pod.Metadata.Name) {
				p.counted[c] = n
			}
		}
	}
	pod := p.last
	status := map[string]*k8sStatus{}
	for i := range pod.Status.ContainerStatuses {
		status[pod.Status.ContainerStatuses[i].Name] = &pod.Status.ContainerStatuses[i]
	}
	for _, c := range pod.Spec.Containers {
		field := "k8s_" + strings.ReplaceAll(c.Name, "-", "_") + "_"
		if q, ok := c.Resources.Limits["memory"]; ok {
			if v, err := parseQuantity(q); err == nil {
				s.Add(field+"memory_limit_bytes", math.Round(v))
			}
		}
		if q, ok := c.Resources.Limits["cpu"]; ok {
			if v, err := parseQuantity(q); err == nil {
				s.Add(field+"cpu_limit_cores", round(v, 3))
			}
		}
		st := status[c.Name]
		if st == nil {
			continue // not started yet
		}
		s.Add(field+"restarts", float64(st.RestartCount))
		last := st.State.Terminated
		if last == nil {
			last = st.LastState.Terminated
		}
		if last != nil {
			s.Add(field+"exit_code", float64(last.ExitCode))
		}
		terms, ooms := 0, 0
		if fresh {
			terms, ooms = p.count(c.Name, st)
		}
		if ooms > 0 && p.log != nil {
			p.log.Warn("the OOM killer killed the job's container", "container", c.Name, "kills", ooms, "memory_limit", c.Resources.Limits["memory"])
		}
		s.Add(field+"terminations", float64(terms))
		s.Add(field+"oom_kills", float64(ooms))
	}
	return nil
}

// count counts the terminations of container name not counted yet, and
// those of them that were OOM kills. Instance i of a container that has
// restarted r times has terminated when i < r, or when i = r and its state
// is terminated; the API gives the reason of instances r and r-1 only.
func (p *Pod) count(name string, st *k8sStatus) (terms, ooms int) {
	r := st.RestartCount
	total := r
	if st.State.Terminated != nil {
		total++
	}
	from := p.counted[name]
	if total <= from {
		return 0, 0
	}
	p.counted[name] = total
	oom := func(i int, t *k8sState) {
		if i >= from && t.Terminated != nil && t.Terminated.Reason == "OOMKilled" {
			ooms++
		}
	}
	oom(r, &st.State)
	if r > 0 {
		oom(r-1, &st.LastState)
	}
	return total - from, ooms
}

// terminated tells whether every container of the pod that has a status
// has terminated.
func (pod *k8sPod) terminated() bool {
	if len(pod.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, st := range pod.Status.ContainerStatuses {
		if st.State.Terminated == nil {
			return false
		}
	}
	return true
}

// parseQuantity reads a Kubernetes quantity ("512Mi", "1.5G", "500m",
// "2", "1e9").
func parseQuantity(q string) (float64, error) {
	q = strings.TrimSpace(q)
	suffixes := []struct {
		s string
		m float64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
		{"n", 1e-9}, {"u", 1e-6}, {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
	}
	mult := 1.0
	for _, sf := range suffixes {
		if num, ok := strings.CutSuffix(q, sf.s); ok && num != "" && (num[len(num)-1] >= '0' && num[len(num)-1] <= '9' || num[len(num)-1] == '.') {
			q, mult = num, sf.m
			break
		}
	}
	v, err := strconv.ParseFloat(q, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("not a quantity: %q", q)
	}
	return v * mult, nil
}

// openPod builds the pod source when the collector reads its pod (a
// sidecar in Kubernetes).
func (s *Sampler) openPod() []string {
	if s.cfg.Pod == nil {
		return nil
	}
	p, err := NewPod(s.cfg.Pod, s.log, func(uid, name string) map[string]int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.agg.enterPod(uid, name)
	})
	if err != nil {
		s.log.Info(err.Error())
		return nil
	}
	s.sources = append(s.sources, p)
	return []string{p.Describe()}
}

// PodAggregates are the running figures of the job's containers from the
// pod's status, over every attempt of the run.
type PodAggregates struct {
	// Pod and UID are the pod the last attempt read; a retry is another
	// pod, whose containers' restarts and terminations start again.
	Pod        string                          `json:"pod"`
	UID        string                          `json:"uid"`
	Containers map[string]*PodContainerFigures `json:"containers"`
}

// PodContainerFigures are one container's figures.
type PodContainerFigures struct {
	MemoryLimit float64 `json:"memory_limit,omitempty"`
	CPULimit    float64 `json:"cpu_limit,omitempty"`
	Restarts    float64 `json:"restarts"`
	ExitCode    float64 `json:"exit_code"`
	Exited      bool    `json:"exited,omitempty"`
	// Terminations and OOMKills are over every attempt; PodTerminations
	// those of the pod UID, which a collector starting again in it goes
	// on from.
	Terminations    float64   `json:"terminations"`
	PodTerminations float64   `json:"pod_terminations"`
	OOMKills        float64   `json:"oom_kills"`
	LastOOM         time.Time `json:"last_oom,omitzero"`
}

// kube returns the pod's aggregates, made on first use.
func (a *Aggregates) kube() *PodAggregates {
	if a.Kubernetes == nil {
		a.Kubernetes = &PodAggregates{Containers: map[string]*PodContainerFigures{}}
	}
	return a.Kubernetes
}

// enterPod makes the aggregates pod uid's and returns the terminations
// counted of each container in it (none when it is another pod than the
// last attempt's).
func (a *Aggregates) enterPod(uid, name string) map[string]int {
	k := a.kube()
	if k.UID != uid {
		k.UID, k.Pod = uid, name
		for _, c := range k.Containers {
			c.PodTerminations = 0
		}
	}
	seen := map[string]int{}
	for key, c := range k.Containers {
		seen[strings.ReplaceAll(key, "_", "-")] = int(c.PodTerminations)
	}
	return seen
}

// addPod counts a field of the pod source: k8s_<container>_<measure>.
func (a *Aggregates) addPod(s *Sample, name string, v float64) bool {
	rest, ok := strings.CutPrefix(name, "k8s_")
	if !ok {
		return false
	}
	for _, m := range []string{"memory_limit_bytes", "cpu_limit_cores", "restarts", "exit_code", "terminations", "oom_kills"} {
		key, ok := strings.CutSuffix(rest, "_"+m)
		if !ok || key == "" {
			continue
		}
		k := a.kube()
		c := k.Containers[key]
		if c == nil {
			c = &PodContainerFigures{}
			k.Containers[key] = c
		}
		switch m {
		case "memory_limit_bytes":
			c.MemoryLimit = v
		case "cpu_limit_cores":
			c.CPULimit = v
		case "restarts":
			c.Restarts = v
		case "exit_code":
			c.ExitCode, c.Exited = v, true
		case "terminations":
			c.Terminations += v
			c.PodTerminations += v
		case "oom_kills":
			if v > 0 {
				c.OOMKills += v
				c.LastOOM = s.Time
				a.OOMKills += v
				a.LastOOM = s.Time
				a.OOMLimit, _ = s.Value(name[:len(name)-len("oom_kills")] + "memory_limit_bytes")
			}
		}
		return true
	}
	return false
}

// clone is a deep copy.
func (k *PodAggregates) clone() *PodAggregates {
	if k == nil {
		return nil
	}
	c := *k
	c.Containers = make(map[string]*PodContainerFigures, len(k.Containers))
	for name, f := range k.Containers {
		fc := *f
		c.Containers[name] = &fc
	}
	return &c
}

// SummaryPod is the job's containers as the pod's status reported them.
type SummaryPod struct {
	Pod        string                   `json:"pod"`
	Containers []SummaryContainerStatus `json:"containers"`
}

// SummaryContainerStatus is one of the job's containers.
type SummaryContainerStatus struct {
	Name             string  `json:"name"`
	MemoryLimitBytes float64 `json:"memory_limit_bytes,omitempty"`
	CPULimitCores    float64 `json:"cpu_limit_cores,omitempty"`
	Restarts         float64 `json:"restarts"`
	// ExitCode is the exit code of its last termination; null while it
	// has none.
	ExitCode     *float64  `json:"exit_code"`
	Terminations float64   `json:"terminations"`
	OOMKills     float64   `json:"oom_kills"`
	LastOOMKill  time.Time `json:"last_oom_kill,omitzero"`
}

func (k *PodAggregates) summary() *SummaryPod {
	if k == nil {
		return nil
	}
	s := &SummaryPod{Pod: k.Pod, Containers: []SummaryContainerStatus{}}
	keys := make([]string, 0, len(k.Containers))
	for key := range k.Containers {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		c := k.Containers[key]
		sc := SummaryContainerStatus{
			Name:             strings.ReplaceAll(key, "_", "-"), // a container's name has no '_'
			MemoryLimitBytes: c.MemoryLimit, CPULimitCores: c.CPULimit,
			Restarts: c.Restarts, Terminations: c.Terminations, OOMKills: c.OOMKills, LastOOMKill: c.LastOOM.UTC(),
		}
		if c.Exited {
			code := c.ExitCode
			sc.ExitCode = &code
		}
		s.Containers = append(s.Containers, sc)
	}
	return s
}
