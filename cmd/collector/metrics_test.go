package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mlsidecar/collector/stores/storetest"
)

// TestProbeAndMetrics runs a retried attempt whose restore is held back by
// the store: /readyz answers 503 until the restore is done, then 200; after
// the job writes files, /metrics shows them uploaded.
func TestProbeAndMetrics(t *testing.T) {
	endpoint := os.Getenv("COLLECTOR_TEST_S3_ENDPOINT")
	key, secret := os.Getenv("COLLECTOR_TEST_S3_ACCESS_KEY"), os.Getenv("COLLECTOR_TEST_S3_SECRET_KEY")
	if endpoint == "" {
		t.Fatal("COLLECTOR_TEST_S3_ENDPOINT is not set: run the tests with scripts/test.sh (make test)")
	}
	bucket := storetest.UniqueName("metrics")
	if _, err := storetest.S3Client(endpoint, key, secret).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	env := []string{"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_REGION=us-east-1"}
	storeURL := func(ep string) string {
		return "s3://" + bucket + "/root?endpoint=" + url.QueryEscape(ep) + "&region=us-east-1"
	}
	work := t.TempDir()

	// Attempt 1 stores one file.
	out1 := filepath.Join(work, "attempt-1")
	writeFile(t, filepath.Join(out1, "seed.bin"), []byte("from the first attempt"))
	p := start(t, work, env, "--store", storeURL(endpoint), "--run", "m", "--outputs-path", out1,
		"--state-dir", filepath.Join(work, "state-1"), "--sync-interval", "0", "--", "true")
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("attempt 1 exited %d", code)
	}

	// Attempt 2, on a fresh disk, reads the store through a proxy that holds
	// the restore's downloads until released.
	target, _ := url.Parse(endpoint)
	release, held := make(chan struct{}), make(chan struct{})
	var holding stdsync.Once
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/outputs/") {
			holding.Do(func() { close(held) })
			<-release
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	addr := freeAddr(t)
	out2 := filepath.Join(work, "attempt-2")
	p = start(t, work, env, "--store", storeURL(proxy.URL), "--run", "m", "--outputs-path", out2,
		"--state-dir", filepath.Join(work, "state-2"), "--sync-interval", "0.3", "--settle", "0.1", "--probe-addr", addr, "--resources-interval", "0.2",
		// A sidecar outside a container measures only the processes named.
		"--resources-pid", strconv.Itoa(os.Getpid()))
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitFor(t, 30*time.Second, "the probe to listen", func() bool { code, _ := get("/healthz"); return code == 200 })
	select {
	case <-held: // the restore is waiting on the store
	case <-time.After(30 * time.Second):
		t.Fatal("the restore did not ask for seed.bin within 30 s")
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz during the restore = %d %q, want 503", code, body)
	}
	close(release)
	waitFor(t, 30*time.Second, "/readyz after the restore", func() bool { code, _ := get("/readyz"); return code == 200 })
	if data, err := os.ReadFile(filepath.Join(out2, "seed.bin")); err != nil || string(data) != "from the first attempt" {
		t.Fatalf("restored seed.bin = %q, %v", data, err)
	}

	writeFile(t, filepath.Join(out2, "a.txt"), []byte("alpha"))
	writeFile(t, filepath.Join(out2, "deep/b.txt"), []byte("beta!"))
	waitFor(t, 30*time.Second, "two uploads in /metrics", func() bool {
		_, body := get("/metrics")
		return metric(body, "collector_outputs_uploaded_files_total") == 2
	})
	_, body := get("/metrics")
	for name, want := range map[string]float64{
		"collector_outputs_uploaded_bytes_total": 10,
		"collector_outputs_failures_total":       0,
		"collector_outputs_pending_files":        0,
	} {
		if got := metric(body, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if metric(body, "collector_outputs_last_sync_timestamp_seconds") < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("collector_outputs_last_sync_timestamp_seconds is not recent:\n%s", body)
	}
	waitFor(t, 30*time.Second, "the resource gauges in /metrics", func() bool {
		_, body := get("/metrics")
		return metric(body, "collector_resources_cpu_cores") >= 0 && metric(body, "collector_resources_processes") > 0
	})
	waitFor(t, 30*time.Second, "collector_state_checkpoint_bytes_total counted", func() bool {
		_, body := get("/metrics")
		return metric(body, "collector_state_checkpoint_bytes_total") > 0
	})
	if code := p.stop(t, 60*time.Second); code != 0 {
		t.Fatalf("attempt 2 exited %d", code)
	}
}

// metric returns the value of the unlabelled sample name in a Prometheus
// text exposition, or -1 when it is absent.
func metric(body, name string) float64 {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
