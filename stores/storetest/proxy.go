package storetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"
)

// Traffic counts what crossed a CountingProxy.
type Traffic struct {
	// BytesPerSecond, when set, slows each request body to this rate, as a
	// slow network would.
	BytesPerSecond atomic.Int64

	mu       stdsync.Mutex
	requests map[string]int   // by method
	putBytes map[string]int64 // request body bytes of PUT/POST, by URL path
	puts     map[string]int   // PUT/POST requests, by URL path
	log      []Request
}

// Request is one request that crossed a CountingProxy, as the server saw it.
type Request struct {
	Method string
	Path   string // unescaped
	Query  url.Values
	Header http.Header // as the client sent it
	Bytes  int64       // request body bytes sent on to the server
	// Status is the answer the proxy gave: the server's, or 502 when it got
	// none (the client went away first, or the server was not reached).
	Status int
	// Start is when the request reached the proxy, Answered when the
	// server's answer did (zero if it never did).
	Start, Answered time.Time
}

// Log returns the requests that ended since the last Reset, in the order they ended.
func (t *Traffic) Log() []Request {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.log)
}

// Requests returns how many requests of method were made ("" for all).
func (t *Traffic) Requests(method string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if method != "" {
		return t.requests[method]
	}
	n := 0
	for _, c := range t.requests {
		n += c
	}
	return n
}

// PutBytes returns the body bytes sent to paths containing substr.
func (t *Traffic) PutBytes(substr string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for p, b := range t.putBytes {
		if strings.Contains(p, substr) {
			n += b
		}
	}
	return n
}

// Puts returns the number of PUT/POST requests to paths containing substr.
func (t *Traffic) Puts(substr string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for p, c := range t.puts {
		if strings.Contains(p, substr) {
			n += c
		}
	}
	return n
}

// Reset forgets what was counted.
func (t *Traffic) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests, t.putBytes, t.puts, t.log = map[string]int{}, map[string]int64{}, map[string]int{}, nil
}

// CountingProxy starts a reverse proxy to target (an http:// base URL) on
// 127.0.0.1 that counts requests and uploaded bytes, the way the server sees
// them. It returns the proxy's base URL.
func CountingProxy(t testing.TB, target string) (string, *Traffic) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	traffic := &Traffic{}
	traffic.Reset()
	rp := httputil.NewSingleHostReverseProxy(u)
	direct := rp.Director
	rp.Director = func(r *http.Request) {
		direct(r)
		// The SDKs ask large PUTs to wait for "100 Continue"; the proxy's
		// transport would wait a second for the server's, which some servers
		// never send. The proxy has the body already: no need to ask.
		r.Header.Del("Expect")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		header := r.Header.Clone()
		path, _ := url.PathUnescape(r.URL.Path)
		counter := &countingReader{r: r.Body, rate: traffic.BytesPerSecond.Load()}
		if r.Body != nil {
			r.Body = counter
		}
		sw := &statusWriter{ResponseWriter: w}
		// Counted in a defer: ReverseProxy panics with http.ErrAbortHandler
		// when the client goes away mid-request, which is what a kill does.
		defer func() {
			traffic.mu.Lock()
			traffic.requests[r.Method]++
			if r.Method == http.MethodPut || r.Method == http.MethodPost {
				traffic.putBytes[path] += counter.n.Load()
				traffic.puts[path]++
			}
			traffic.log = append(traffic.log, Request{Method: r.Method, Path: path, Query: r.URL.Query(), Header: header,
				Bytes: counter.n.Load(), Status: sw.status, Start: start, Answered: sw.answered})
			traffic.mu.Unlock()
		}()
		rp.ServeHTTP(sw, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, traffic
}

// statusWriter notes the status of the answer and when it came.
type statusWriter struct {
	http.ResponseWriter
	status   int
	answered time.Time
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // not a 1xx
		w.status, w.answered = code, time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingReader counts the bytes read through it. The count is atomic: when
// a request is aborted, the transport's write loop may still be reading the
// body while the handler's deferred count reads n.
type countingReader struct {
	r    io.ReadCloser
	n    atomic.Int64
	rate int64 // bytes per second; 0 is unlimited
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.rate > 0 && len(p) > 256<<10 {
		p = p[:256<<10]
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if c.rate > 0 && n > 0 {
		time.Sleep(time.Duration(int64(n) * int64(time.Second) / c.rate))
	}
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
