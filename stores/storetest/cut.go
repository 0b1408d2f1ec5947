package storetest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	stdsync "sync"
	"testing"
)

// CutProxy is a reverse proxy to a store server that counts the request
// body bytes of the requests it is told to watch, and plays a crash in the
// middle of one: once armed, when the watched requests have passed a given
// number of bytes, it calls a function that kills the client and cuts the
// request there, so that the server gets that body incomplete (and keeps
// none of it) and the client no answer. The count is taken as the bytes
// pass, not when a request ends, so it is exact at the cut.
type CutProxy struct {
	// Host is the proxy's host:port.
	Host string

	watch func(*http.Request) bool

	mu    stdsync.Mutex
	sent  int64 // watched body bytes passed on since Arm
	at    int64 // 0: never cut
	cut   func()
	cutOK bool // the cut happened
}

// errCut is what the proxy reads from a body it cut.
var errCut = errors.New("cut by the test")

// NewCutProxy starts a CutProxy to target (host:port, plain HTTP) that
// watches the requests for which watch is true. It keeps the Host header, as
// the store's own answers (a GCS session URI) must name the proxy.
func NewCutProxy(t testing.TB, target string, watch func(*http.Request) bool) *CutProxy {
	t.Helper()
	p := &CutProxy{watch: watch}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, errCut) {
			// The client is dead: it hears nothing back.
			if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && watch(r) {
			r.Body = &cutReader{p: p, r: r.Body}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Arm counts from zero, and once at watched bytes have passed (0: never)
// calls cut and cuts the request.
func (p *CutProxy) Arm(at int64, cut func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent, p.at, p.cut, p.cutOK = 0, at, cut, false
}

// Sent returns the watched body bytes passed on since Arm.
func (p *CutProxy) Sent() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// Cut tells whether the armed cut happened.
func (p *CutProxy) Cut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cutOK
}

// cutReader is a watched request's body.
type cutReader struct {
	p *CutProxy
	r io.ReadCloser
}

func (c *cutReader) Read(b []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	if p.cutOK {
		p.mu.Unlock()
		return 0, errCut
	}
	if p.at > 0 {
		b = b[:min(int64(len(b)), p.at-p.sent)]
	}
	p.mu.Unlock()
	n, err := c.r.Read(b)
	p.mu.Lock()
	p.sent += int64(n)
	cut := p.at > 0 && p.sent >= p.at
	if cut {
		p.cutOK = true
	}
	kill := p.cut
	p.mu.Unlock()
	if cut {
		kill()
		return n, errCut
	}
	return n, err
}

func (c *cutReader) Close() error { return c.r.Close() }
