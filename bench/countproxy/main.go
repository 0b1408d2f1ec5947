// Command countproxy is a reverse proxy that counts the HTTP requests passing through it, for the
// benchmarks in bench/: it shows how many requests a sync tool makes to an S3 server.
//
//	countproxy -listen 127.0.0.1:7272 -target http://127.0.0.1:7171
//
// Every request is forwarded unchanged (the Host header included, so SigV4 signatures still match).
// GET /__count returns the counts so far as JSON; POST /__reset sets them to zero. On SIGTERM or SIGINT
// it prints the counts to stdout and exits. Counts are kept by method and by S3 operation as far as
// the method, path and query tell it (ListObjects, HeadObject, PutObject, UploadPart, ...); "bytes"
// counts the request bodies sent on, and "bytes:state" those to a collector's state (keys under
// .collector/).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

type counter struct {
	mu    sync.Mutex
	total int
	by    map[string]int
}

func (c *counter) add(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	for _, k := range keys {
		c.by[k]++
	}
}

// addBytes adds n to the counts of keys.
func (c *counter) addBytes(n int, keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.by[k] += n
	}
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	r    io.ReadCloser
	c    *counter
	keys []string
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.c.addBytes(n, b.keys...)
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{"total": c.total}
	for k, v := range c.by {
		m[k] = v
	}
	return m
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total = 0
	c.by = map[string]int{}
}

// operation names the S3 operation of a path-style request, as far as method, path and query tell.
func operation(r *http.Request) string {
	q := r.URL.Query()
	p := strings.TrimPrefix(r.URL.Path, "/")
	slash := strings.IndexByte(p, '/')
	hasKey := slash >= 0 && slash < len(p)-1 // "bucket/key", not "bucket" or "bucket/"
	switch r.Method {
	case http.MethodGet:
		switch {
		case p == "":
			return "ListBuckets"
		case !hasKey && q.Has("location"):
			return "GetBucketLocation"
		case !hasKey && q.Has("uploads"):
			return "ListMultipartUploads"
		case !hasKey:
			return "ListObjects"
		case q.Has("uploadId"):
			return "ListParts"
		default:
			return "GetObject"
		}
	case http.MethodHead:
		if !hasKey {
			return "HeadBucket"
		}
		return "HeadObject"
	case http.MethodPut:
		switch {
		case !hasKey:
			return "CreateBucket"
		case q.Has("partNumber") && r.Header.Get("X-Amz-Copy-Source") != "":
			return "UploadPartCopy"
		case q.Has("partNumber"):
			return "UploadPart"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		default:
			return "PutObject"
		}
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "CreateMultipartUpload"
		case q.Has("uploadId"):
			return "CompleteMultipartUpload"
		case q.Has("delete"):
			return "DeleteObjects"
		default:
			return "POST"
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	}
	return r.Method
}

func main() {
	listen := flag.String("listen", "127.0.0.1:7272", "address to listen on")
	target := flag.String("target", "http://127.0.0.1:7171", "server to forward to")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		fmt.Fprintf(os.Stderr, "countproxy: bad -target %q\n", *target)
		os.Exit(2)
	}

	c := &counter{by: map[string]int{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // keep the signed Host header
		},
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		FlushInterval: -1,
		BufferPool:    &bufferPool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/__count":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(c.snapshot())
			return
		case "/__reset":
			c.reset()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		c.add("method:"+r.Method, "op:"+operation(r))
		if r.Body != nil && r.Body != http.NoBody {
			keys := []string{"bytes"}
			if strings.Contains(r.URL.Path, "/.collector/") {
				keys = append(keys, "bytes:state")
			}
			r.Body = &countingBody{r: r.Body, c: c, keys: keys}
		}
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 30 * time.Second}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "countproxy:", err)
		os.Exit(1)
	case <-sigs:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)

	snap := c.snapshot()
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s %d\n", k, snap[k])
	}
}

// bufferPool lends the proxy its copy buffers; without one it allocates
// 32 KiB per request.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
