// Package dockertest is a fake Docker engine on a unix socket for tests: it
// answers GET /containers/json (all=1, label filters),
// /containers/{id}/json, /containers/{id}/logs (the multiplexed
// frame format, or a TTY container's raw stream; timestamps, since, follow)
// and /containers/{id}/stats (stream=false) the way the engine does, and can
// cut a log stream in the middle of a frame. Tests of the Docker log source
// and of the resource sampler use it; it is not part of the binary.
package dockertest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

// TimeFormat is how the engine stamps a log message.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Engine is the fake engine. Its methods are safe for concurrent use.
type Engine struct {
	// Socket is the path of the engine's unix socket.
	Socket string

	mu         stdsync.Mutex
	containers map[string]*container
	changed    chan struct{} // closed and replaced at every change
	requests   []string
	requested  chan struct{} // closed and replaced at every request
	drops      []int         // frames written before the next logs stream is cut
}

type container struct {
	id       string // 64 hex digits
	name     string
	tty      bool
	driver   string // the log driver: "" (json-file) or one that cannot be read
	status   string // running, exited, created, removing, dead
	exitCode int
	started  time.Time
	finished time.Time
	labels   map[string]string
	messages []message
	stats    string
}

type message struct {
	stream string
	time   time.Time
	text   string
}

// New starts an engine on a socket in a new temporary folder (a short path:
// a unix socket's path has at most 107 bytes); it stops when the test ends.
func New(t testing.TB) *Engine {
	t.Helper()
	dir, err := os.MkdirTemp("", "dockertest")
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Socket: socket, containers: map[string]*container{}, changed: make(chan struct{}), requested: make(chan struct{})}
	srv := &http.Server{Handler: e, ErrorLog: nil}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		os.RemoveAll(dir)
	})
	return e
}

// Add creates a running container named id. The engine answers to its
// name and to its ID (ID returns it).
func (e *Engine) Add(id string, tty bool) {
	e.change(func() {
		sum := sha256.Sum256([]byte(id))
		e.containers[id] = &container{id: hex.EncodeToString(sum[:]), name: id, tty: tty, status: "running", started: time.Now()}
	})
}

// ID returns the container's ID.
func (e *Engine) ID(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.containers[id].id
}

// SetLabels sets the container's labels (Config.Labels).
func (e *Engine) SetLabels(id string, labels map[string]string) {
	e.change(func() { e.containers[id].labels = labels })
}

// SetStatus sets a container's state (created, running, restarting,
// exited, removing, dead) and its exit code; a follow stream ends once the
// container is exited. Running stamps StartedAt, exited FinishedAt, with
// the time of the call.
func (e *Engine) SetStatus(id, status string, exitCode int) {
	e.change(func() {
		c := e.containers[id]
		c.status, c.exitCode = status, exitCode
		switch status {
		case "running":
			c.started = time.Now()
		case "exited":
			c.finished = time.Now()
		}
	})
}

// Remove removes the container: the engine no longer knows it.
func (e *Engine) Remove(id string) {
	e.change(func() {
		e.containers[id].status = "removed" // ends the follow streams open on it
		delete(e.containers, id)
	})
}

// Write appends a message to a container's log: text as the container
// wrote it, with its newline, or without one for a partial message (a piece
// of a line longer than the engine's buffer, or the last bytes before
// exit). A TTY container has only "stdout".
func (e *Engine) Write(id, stream string, at time.Time, text string) {
	e.change(func() {
		c := e.containers[id]
		c.messages = append(c.messages, message{stream: stream, time: at, text: text})
	})
}

// SetLogDriver sets the container's log driver; any but "json-file" or
// "local" makes its logs answer 501, as the engine does for one it cannot
// read (none, syslog, fluentd, ...).
func (e *Engine) SetLogDriver(id, driver string) {
	e.change(func() { e.containers[id].driver = driver })
}

// SetStats sets the JSON body of the container's stats answer.
func (e *Engine) SetStats(id, body string) {
	e.change(func() { e.containers[id].stats = body })
}

// CutAfter makes the next logs streams end abruptly: the i-th stream opened
// from now on writes frames[i] whole frames, then half of the next one,
// then drops the connection (when the log has that many; otherwise it
// behaves normally).
func (e *Engine) CutAfter(frames ...int) {
	e.change(func() { e.drops = append(e.drops, frames...) })
}

// Requests returns the requests served so far, as "METHOD PATH?QUERY".
func (e *Engine) Requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}

// WaitRequests waits until the engine has had n requests that contain
// substr, and fails the test after 10 s.
func (e *Engine) WaitRequests(t testing.TB, substr string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		got := 0
		for _, r := range e.requests {
			if strings.Contains(r, substr) {
				got++
			}
		}
		next := e.requested
		e.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-next:
		case <-timeout:
			t.Fatalf("%d requests with %q in 10 s, want %d: %q", got, substr, n, e.Requests())
		}
	}
}

func (e *Engine) change(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.requests = append(e.requests, r.Method+" "+r.URL.RequestURI())
	close(e.requested)
	e.requested = make(chan struct{})
	e.mu.Unlock()
	if r.URL.Path == "/containers/json" && r.Method == http.MethodGet {
		e.list(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/containers/")
	id, what, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || r.Method != http.MethodGet {
		engineError(w, http.StatusNotFound, "page not found")
		return
	}
	e.mu.Lock()
	c := e.lookup(id)
	if c != nil {
		id = c.name
	}
	e.mu.Unlock()
	if c == nil {
		engineError(w, http.StatusNotFound, "No such container: "+id)
		return
	}
	switch what {
	case "json":
		e.inspect(w, id)
	case "logs":
		e.logs(w, r, id)
	case "stats":
		if r.URL.Query().Get("stream") != "false" {
			engineError(w, http.StatusBadRequest, "dockertest: only stream=false is served")
			return
		}
		e.mu.Lock()
		body := c.stats
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	default:
		engineError(w, http.StatusNotFound, "page not found")
	}
}

// lookup finds a container by name or ID; e.mu is held.
func (e *Engine) lookup(id string) *container {
	if c := e.containers[id]; c != nil {
		return c
	}
	for _, c := range e.containers {
		if c.id == id {
			return c
		}
	}
	return nil
}

// list answers GET /containers/json: with all=1 every container, else the
// running ones; filters {"label":["k=v",...]} keeps those with every label.
func (e *Engine) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var filters map[string][]string
	if f := q.Get("filters"); f != "" {
		if err := json.Unmarshal([]byte(f), &filters); err != nil {
			engineError(w, http.StatusBadRequest, "invalid filter: "+err.Error())
			return
		}
	}
	all := q.Get("all") == "1" || q.Get("all") == "true"
	e.mu.Lock()
	list := []map[string]any{}
	for _, c := range e.containers {
		keep := all || c.status == "running"
		for _, l := range filters["label"] {
			k, v, _ := strings.Cut(l, "=")
			if got, ok := c.labels[k]; !ok || got != v {
				keep = false
			}
		}
		if keep {
			list = append(list, map[string]any{"Id": c.id, "Names": []string{"/" + c.name}, "Labels": c.labels, "State": c.status})
		}
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

func engineError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (e *Engine) inspect(w http.ResponseWriter, id string) {
	e.mu.Lock()
	c := e.containers[id]
	state := map[string]any{
		"Status": c.status, "Running": c.status == "running", "Paused": false,
		"Restarting": c.status == "restarting", "OOMKilled": false, "Dead": c.status == "dead",
		"Pid": 0, "ExitCode": c.exitCode, "Error": "",
		"StartedAt": c.started.UTC().Format(time.RFC3339Nano), "FinishedAt": c.finished.UTC().Format(time.RFC3339Nano),
	}
	body := map[string]any{
		"Id": c.id, "Name": "/" + id, "RestartCount": 0,
		"State": state, "Config": map[string]any{"Tty": c.tty, "Labels": c.labels},
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func (e *Engine) logs(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	if q.Get("stdout") != "1" || q.Get("stderr") != "1" || q.Get("timestamps") != "1" {
		engineError(w, http.StatusBadRequest, "dockertest: serves stdout=1&stderr=1&timestamps=1 only")
		return
	}
	since, err := parseSince(q.Get("since"))
	if err != nil {
		engineError(w, http.StatusBadRequest, err.Error())
		return
	}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	e.mu.Lock()
	c := e.containers[id]
	if c.status == "removing" || c.status == "dead" {
		e.mu.Unlock()
		engineError(w, http.StatusConflict, "can not get logs from container which is dead or marked for removal")
		return
	}
	if c.driver != "" && c.driver != "json-file" && c.driver != "local" {
		e.mu.Unlock()
		engineError(w, http.StatusNotImplemented, `configured logging driver does not support reading`)
		return
	}
	tty := c.tty
	cut := -1
	if len(e.drops) > 0 {
		cut, e.drops = e.drops[0], e.drops[1:]
	}
	e.mu.Unlock()
	if tty {
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	} else {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	}
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	flusher.Flush()
	next, written := 0, 0
	for {
		e.mu.Lock()
		msgs := c.messages[next:]
		next = len(c.messages)
		exited := c.status != "running" && c.status != "created" && c.status != "restarting"
		changed := e.changed
		e.mu.Unlock()
		for _, m := range msgs {
			if m.time.Before(since) {
				continue
			}
			frame := []byte(m.time.UTC().Format(TimeFormat) + " " + m.text)
			if !tty {
				header := make([]byte, 8, 8+len(frame))
				header[0] = 1
				if m.stream == "stderr" {
					header[0] = 2
				}
				binary.BigEndian.PutUint32(header[4:], uint32(len(frame)))
				frame = append(header, frame...)
			}
			if written == cut {
				w.Write(frame[:len(frame)/2])
				flusher.Flush()
				panic(http.ErrAbortHandler)
			}
			w.Write(frame)
			written++
		}
		flusher.Flush()
		if !follow || exited {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// parseSince reads the engine's since: Unix seconds with an optional
// fraction of up to nine digits.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("dockertest: bad since %q", s)
	}
	var nsec int64
	if frac != "" {
		if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("dockertest: bad since %q", s)
		}
		nsec *= int64(math.Pow10(9 - len(frac)))
	}
	return time.Unix(sec, nsec), nil
}

// Query parses the query of a request as Requests returns it.
func Query(request string) url.Values {
	_, uri, _ := strings.Cut(request, " ")
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil
	}
	return u.Query()
}
