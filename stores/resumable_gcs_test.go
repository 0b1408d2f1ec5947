package stores_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// gcsEnv opens f's store as the conformance suite does.
func gcsEnv(t *testing.T, f storetest.Fixture) *env {
	t.Helper()
	for _, k := range kinds {
		if k.name == stores.KindGCS {
			store := f.OpenStore(t)
			root := store.Bucket()
			return &env{kind: k, store: store, root: root, bucket: blob.PrefixedBucket(root, runPrefix), target: k.target(t, f)}
		}
	}
	t.Fatal("no gcs kind in the suite")
	return nil
}

// gcsChunks tells the requests that send bytes of a GCS upload session.
func gcsChunks(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Get("upload_id") != ""
}

// sessionHolds asks a GCS upload session how many bytes it holds, the way
// the uploader does after a restart.
func sessionHolds(t *testing.T, session string, size int64) int64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, session, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(stores.Redact(err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("status query: %s, want 308 (incomplete)", resp.Status)
	}
	last, ok := strings.CutPrefix(resp.Header.Get("Range"), "bytes=0-")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		t.Fatalf("status query: Range %q", resp.Header.Get("Range"))
	}
	return n + 1
}

// An upload killed while a chunk is on its way continues, after a restart,
// from what the GCS session holds: the bytes the server committed are read
// again for the hash but not sent again; only the rest is.
func TestGCSResumeAfterKill(t *testing.T) {
	f := storetest.GCS(t)
	proxy := storetest.NewCutProxy(t, f.Getenv("STORAGE_EMULATOR_HOST"), gcsChunks)
	f.Env = []string{"STORAGE_EMULATOR_HOST=" + proxy.Host} // the uploader's way to the server
	e := gcsEnv(t, f)
	file := newFile("model/weights.bin", bigFile(), partSize)

	// The kill lands half-way through the third part.
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	proxy.Arm(2*partSize+partSize/2, kill)
	j := &journal{}
	p := file.progress
	if err := e.uploader(t).Upload(ctx, bytes.NewReader(file.data), &p, file.metadata, concurrency, j); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed upload: got %v, want context.Canceled", err)
	}
	sentBefore := proxy.Sent()
	saved := j.last(t)
	if got, want := len(saved.Parts), 2; got != want {
		t.Fatalf("the killed upload saved %d parts, want %d", got, want)
	}
	checkAbsent(t, e, file.key)
	committed := sessionHolds(t, saved.ID, file.progress.Size)
	if committed != 2*partSize {
		t.Fatalf("the session holds %d bytes after the kill, want the %d of the two parts it answered", committed, 2*partSize)
	}

	// The restarted collector: a new store and uploader, the saved Progress.
	proxy.Arm(0, nil)
	e = gcsEnv(t, f)
	r := &countingReader{r: bytes.NewReader(file.data)}
	p = saved
	if err := e.uploader(t).Upload(context.Background(), r, &p, file.metadata, concurrency, &journal{}); err != nil {
		t.Fatal(err)
	}
	checkStored(t, e, file)
	if p.ID != saved.ID {
		t.Errorf("the restart started a new session instead of continuing the saved one")
	}
	sentAfter := proxy.Sent()
	resent := sentAfter - (file.progress.Size - committed)
	t.Logf("killed after %d bytes sent, %d of them committed; after the restart %d bytes sent for the %d left: %d committed bytes sent again",
		sentBefore, committed, sentAfter, file.progress.Size-committed, resent)
	if resent != 0 {
		t.Errorf("the restart sent %d bytes, want %d: only what the session did not hold", sentAfter, file.progress.Size-committed)
	}
	if got, want := r.n.Load(), file.progress.Size; got != want {
		t.Errorf("the restart read %d bytes of the file, want %d (once, the committed part for the hash only)", got, want)
	}
}

// The session URI is a credential: an error that quotes the request's URL
// does not carry it.
func TestGCSErrorsHideSession(t *testing.T) {
	f := storetest.GCS(t)
	front := f.Getenv("STORAGE_EMULATOR_HOST")
	srv := httptest.NewServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: front}))
	f.Env = []string{"STORAGE_EMULATOR_HOST=" + strings.TrimPrefix(srv.URL, "http://")}
	e := gcsEnv(t, f)
	file := newFile("model/weights.bin", bigFile()[:12*mib], partSize)

	ctx, cancel := context.WithCancel(context.Background())
	p := file.progress
	err := e.uploader(t).Upload(ctx, bytes.NewReader(file.data), &p, nil, concurrency, &journal{cancelAt: 1, cancel: cancel})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload: got %v, want context.Canceled", err)
	}
	u, err := url.Parse(p.ID)
	if err != nil || u.Query().Get("upload_id") == "" {
		t.Fatalf("progress ID %q is not a session URI", p.ID)
	}
	secret := u.Query().Get("upload_id")

	srv.Close() // the endpoint goes away: every request fails with its URL
	uploader := e.uploader(t)
	saved := p
	err = uploader.Upload(context.Background(), bytes.NewReader(file.data), &p, nil, concurrency, nil)
	if err == nil {
		t.Fatal("upload to a closed endpoint succeeded")
	}
	abortErr := uploader.Abort(context.Background(), saved)
	if abortErr == nil {
		t.Fatal("abort at a closed endpoint succeeded")
	}
	for _, err := range []error{err, abortErr} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes the session's upload_id: %v", err)
		}
		if !strings.Contains(err.Error(), "upload_id=REDACTED") {
			t.Errorf("error %q does not show the redacted request URL", err)
		}
	}
}
