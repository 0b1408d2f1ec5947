package storetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	stdsync "sync"
)

// gcsFront stands in front of fake-gcs-server, which the GCS fixtures reach
// through it, and answers the two requests of GCS's resumable-upload protocol
// that fake-gcs-server (1.56.1) answers otherwise, the way GCS documents them
// (https://cloud.google.com/storage/docs/performing-resumable-uploads):
//
//   - A status query (PUT, no body, "Content-Range: bytes */SIZE") of a
//     session that holds fewer than SIZE bytes: GCS answers 308 with the
//     Range it holds; fake-gcs-server commits the partial object
//     (fsouza/fake-gcs-server#1362, #2354).
//   - A DELETE of a session URI: GCS cancels the session (499), and later
//     requests of it fail with 404; fake-gcs-server answers 499 and keeps it.
//
// It learns what a session holds from fake-gcs-server's own 308 answers to
// the chunks. Everything else goes to the server unchanged: the bytes, the
// objects, their metadata and checksums are fake-gcs-server's.
type gcsFront struct {
	proxy *httputil.ReverseProxy

	mu       stdsync.Mutex
	sessions map[string]*gcsSession // by upload_id
}

// gcsSession is an upload session started through the front and not
// completed.
type gcsSession struct {
	busy      stdsync.Mutex // held while one of its requests is served
	object    string        // bucket + "/" + object name
	committed int64         // bytes the server holds
	cancelled bool
}

var (
	gcsFrontsMu stdsync.Mutex
	gcsFronts   = map[string]*gcsFrontServer{} // by fake-gcs-server host
)

type gcsFrontServer struct {
	host  string // host:port of the front
	front *gcsFront
}

// gcsFrontFor returns the front of the fake-gcs-server at host (host:port),
// started on first use and kept for the test process: every GCS fixture of
// the process shares it, as they share STORAGE_EMULATOR_HOST.
func gcsFrontFor(host string) *gcsFrontServer {
	gcsFrontsMu.Lock()
	defer gcsFrontsMu.Unlock()
	if s := gcsFronts[host]; s != nil {
		return s
	}
	f := &gcsFront{sessions: map[string]*gcsSession{}}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// fake-gcs-server tells its XML API (the client's downloads)
			// by the Host it was started as, --public-host.
			pr.SetURL(&url.URL{Scheme: "http", Host: host})
			pr.Out.Host = host
		},
		ModifyResponse: f.learn,
		// A client that went away (a kill) is no news: answer without a log line.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	srv := httptest.NewServer(f)
	s := &gcsFrontServer{host: strings.TrimPrefix(srv.URL, "http://"), front: f}
	gcsFronts[host] = s
	return s
}

// GCSUploadsInFlight returns how many resumable upload sessions of object in
// bucket are open on the GCS test server: started, neither completed nor
// cancelled.
func GCSUploadsInFlight(bucket, object string) int {
	gcsFrontsMu.Lock()
	defer gcsFrontsMu.Unlock()
	n := 0
	for _, s := range gcsFronts {
		s.front.mu.Lock()
		for _, sess := range s.front.sessions {
			if sess.object == bucket+"/"+object && !sess.cancelled {
				n++
			}
		}
		s.front.mu.Unlock()
	}
	return n
}

func (f *gcsFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("upload_id"); id != "" && strings.HasPrefix(r.URL.Path, "/upload/") {
		f.mu.Lock()
		sess := f.sessions[id]
		f.mu.Unlock()
		if sess != nil {
			// One request of a session at a time, as GCS keeps a session's
			// state consistent: a status query waits for a chunk still on
			// its way (one a killed client sent whole) to be answered.
			sess.busy.Lock()
			defer sess.busy.Unlock()
			f.mu.Lock()
			committed, cancelled := sess.committed, sess.cancelled
			if r.Method == http.MethodDelete {
				sess.cancelled = true
			}
			f.mu.Unlock()
			switch {
			case cancelled:
				http.Error(w, "upload session cancelled", http.StatusNotFound)
				return
			case r.Method == http.MethodDelete:
				w.WriteHeader(499)
				return
			case r.Method == http.MethodPut && r.ContentLength == 0:
				if size, ok := statusQuery(r.Header.Get("Content-Range")); ok && committed < size {
					if committed > 0 {
						w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", committed-1))
					}
					w.Header().Set("Content-Length", "0")
					w.WriteHeader(http.StatusPermanentRedirect)
					return
				}
			}
		}
	}
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientHost{}, r.Host)))
}

// clientHost is the context key of the Host a request to the front named.
type clientHost struct{}

// learn records the sessions the server starts, what each holds after a
// chunk, and the ones it completes.
func (f *gcsFront) learn(resp *http.Response) error {
	req := resp.Request
	q := req.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case req.Method == http.MethodPost && q.Get("uploadType") == "resumable" && resp.StatusCode == http.StatusOK:
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Query().Get("upload_id") == "" {
			return nil
		}
		// The session URI names the host the client reached: this front, or
		// a proxy in front of it (they keep the Host header).
		loc.Host = resp.Request.Context().Value(clientHost{}).(string)
		resp.Header.Set("Location", loc.String())
		bucket := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/upload/storage/v1/b/"), "/o")
		f.sessions[loc.Query().Get("upload_id")] = &gcsSession{object: bucket + "/" + q.Get("name")}
	case req.Method == http.MethodPut && q.Get("upload_id") != "":
		sess := f.sessions[q.Get("upload_id")]
		if sess == nil {
			return nil
		}
		switch resp.StatusCode {
		case http.StatusPermanentRedirect:
			last, ok := strings.CutPrefix(resp.Header.Get("Range"), "bytes=0-")
			if n, err := strconv.ParseInt(last, 10, 64); ok && err == nil {
				sess.committed = n + 1
			}
		case http.StatusOK, http.StatusCreated:
			delete(f.sessions, q.Get("upload_id"))
		}
	}
	return nil
}

// statusQuery tells whether a Content-Range is a status query's,
// "bytes */SIZE", and returns SIZE.
func statusQuery(contentRange string) (int64, bool) {
	s, ok := strings.CutPrefix(contentRange, "bytes */")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
