package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mlsidecar/collector/internal/probe"
	"github.com/mlsidecar/collector/report"
	"github.com/mlsidecar/collector/stores/storetest"
)

// reportJob is a short job: output files, stdout and stderr lines (one
// that reads like an error), then exit 3.
const reportJob = `echo starting; for i in 1 2 3; do echo "step $i"; head -c 20000 /dev/zero > "$COLLECTOR_OUTPUTS_PATH/f$i.bin"; sleep 0.3; done; ` +
	`echo "Traceback (most recent call last):" >&2; echo "ValueError: bad <input>" >&2; exit 3`

var hrefPattern = regexp.MustCompile(`(?i)(?:src|href)="([^"]*)"`)

// checkPage checks what a person looks at in a run's page, and that the
// page loads nothing: no script, no http(s) reference but links to the
// store's own objects (signedPrefix, when the store signs).
func checkPage(t *testing.T, page, signedPrefix string, want ...string) {
	t.Helper()
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("the page has a <script>")
	}
	for _, m := range hrefPattern.FindAllStringSubmatch(page, -1) {
		u := m[1]
		switch {
		case signedPrefix != "" && strings.HasPrefix(u, signedPrefix):
		case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"), strings.HasPrefix(u, "//"):
			t.Errorf("the page refers to %q", u)
		}
	}
	for _, w := range append([]string{`<svg class="plot"`, "<path d=\"M"}, want...) {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
}

// TestReportOfARealRun runs the collector around a job twice (a failure, a
// retry) into a file:// store: each attempt leaves its record and the
// run's page in the store, and `collector report` writes the same page from
// the store, or to stdout.
func TestReportOfARealRun(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	args := []string{"--store", store, "--run", "real", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--sync-interval", "0.5", "--resources-interval", "0.2", "--", "sh", "-c", reportJob}
	if code := start(t, dir, nil, args...).wait(t, 60*time.Second); code != 3 {
		t.Fatalf("exit %d; want the job's 3", code)
	}
	// The retry succeeds: same run, a job that exits 0.
	retry := append(append([]string(nil), args[:len(args)-1]...), "echo retried")
	if code := start(t, dir, nil, retry...).wait(t, 60*time.Second); code != 0 {
		t.Fatalf("retry: exit %d; want 0", code)
	}

	runDir := filepath.Join(dir, "store", "real")
	for attempt, wantCode := range map[int]int{1: 3, 2: 0} {
		data, err := os.ReadFile(filepath.Join(runDir, report.AttemptKey("", attempt)))
		if err != nil {
			t.Fatal(err)
		}
		var rec report.AttemptRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.ExitCode == nil || *rec.ExitCode != wantCode || rec.Mode != "wrapper" || !rec.Ended.After(rec.Started) {
			t.Errorf("attempt %d's record: %s; want exit code %d, wrapper mode, its span", attempt, data, wantCode)
		}
	}
	inStore, err := os.ReadFile(filepath.Join(runDir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, string(inStore), "", "exit 3", "exit 0", "attempt 2", `href="./outputs/f1.bin"`,
		"ValueError: bad &lt;input&gt;", `<span class="se err">`, "retried", "3 files")

	out := filepath.Join(dir, "page.html")
	code, msg := runInProcess(t, nil, "report", "--store", store, "--run", "real", "-o", out)
	if code != 0 {
		t.Fatalf("collector report: exit %d: %s", code, msg)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// file:// signs nothing: the outputs are named, not linked.
	checkPage(t, string(page), "", "exit 3", "exit 0", "<td>f1.bin</td>", "ValueError: bad &lt;input&gt;")
	if strings.Contains(string(page), "<a href") {
		t.Error("links in the page of a file:// store written outside it")
	}

	code, stdout := runInProcess(t, nil, "report", "--store", store, "--run", "real", "-o", "-")
	if code != 0 || !strings.HasPrefix(stdout, "<!doctype html>") || !strings.HasSuffix(stdout, "</html>") {
		t.Errorf("-o -: exit %d, %d bytes starting %.40q; want the page on stdout", code, len(stdout), stdout)
	}
}

func TestReportOff(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	p := start(t, dir, []string{"COLLECTOR_REPORT=false"}, "--store", store, "--run", "quiet", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--", "true")
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(store, "quiet", "report.html")); !os.IsNotExist(err) {
		t.Errorf("report.html with COLLECTOR_REPORT=false: %v", err)
	}
	if _, err := os.Stat(filepath.Join(store, "quiet", report.AttemptKey("", 1))); err != nil {
		t.Errorf("no attempt record: %v", err)
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(filepath.Join(store, "r", "outputs"), 0o755)
	os.WriteFile(filepath.Join(store, "r", "outputs", "x"), []byte("x"), 0o644)
	out := filepath.Join(dir, "out.html")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no run", []string{"--store", store}, exitUsage, "--run: the run's name is needed"},
		{"bad run", []string{"--store", store, "--run", "../x"}, exitUsage, `--run: "../x" is not a valid run name`},
		{"expiry", []string{"--store", store, "--run", "r", "--link-expiry", "200h"}, exitUsage, "--link-expiry: 200h0m0s; want 0 (no links) to 168h"},
		{"log lines", []string{"--store", store, "--run", "r", "--log-lines", "-1"}, exitUsage, "--log-lines: -1; want 0 to 100000"},
		{"argument", []string{"--store", store, "--run", "r", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"no such run", []string{"--store", store, "--run", "other"}, exitFailure, `the store holds nothing of run "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := runInProcess(t, nil, append([]string{"report", "-o", out}, tc.args...)...)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("exit %d, %q; want %d and %q", code, msg, tc.code, tc.msg)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s written: %v", out, err)
			}
		})
	}
}

// TestReportSignedLinks: on S3, Azure and GCS the page links each output by
// a URL the store signed, and the link gives the object's bytes. GCS signs
// with the service account key GOOGLE_APPLICATION_CREDENTIALS names (one
// the test makes); fake-gcs-server serves a signed URL's path and query
// but checks no signature, so the test checks it with the key's public
// half.
func TestReportSignedLinks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fixture   func(testing.TB) storetest.Fixture
		prefix    func(env map[string]string) string // where the links lead
		signature string                             // a parameter of a signed link
		gcsKey    bool                               // sign with a service account key the test makes
	}{
		{"s3", storetest.S3, func(map[string]string) string { return os.Getenv("COLLECTOR_TEST_S3_ENDPOINT") + "/" }, "X-Amz-Signature=", false},
		{"azure", storetest.Azure, func(map[string]string) string { return os.Getenv("COLLECTOR_TEST_AZURE_ENDPOINT") + "/" }, "sig=", false},
		// The Go client signs for https://$STORAGE_EMULATOR_HOST/ where one
		// is set (storage.googleapis.com otherwise).
		{"gcs", storetest.GCS, func(env map[string]string) string { return "https://" + env["STORAGE_EMULATOR_HOST"] + "/" }, "Signature=", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fixture(t)
			dir := t.TempDir()
			var key *rsa.PrivateKey
			if tc.gcsKey {
				key = serviceAccountKeyFile(t, filepath.Join(dir, "key.json"))
				f.Env = append(f.Env, "GOOGLE_APPLICATION_CREDENTIALS="+filepath.Join(dir, "key.json"))
			}
			env := map[string]string{}
			for _, kv := range f.Env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			p := start(t, dir, f.Env, "--connections", f.Connections, "--run", "s", "--outputs-path", filepath.Join(dir, "outputs"),
				"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0.2", "--", "sh", "-c", reportJob)
			if code := p.wait(t, 60*time.Second); code != 3 {
				t.Fatalf("exit %d; want 3", code)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			out := filepath.Join(dir, "page.html")
			code, msg := runInProcess(t, env, "report", "--connections", f.Connections, "--run", "s", "-o", out, "--link-expiry", "10m")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, msg)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			page := string(data)
			checkPage(t, page, tc.prefix(env), "valid until")
			m := regexp.MustCompile(`<a href="([^"]+)">f2.bin</a>`).FindStringSubmatch(page)
			if m == nil {
				t.Fatal("f2.bin is not linked")
			}
			link := strings.ReplaceAll(m[1], "&amp;", "&")
			if !strings.Contains(link, tc.signature) {
				t.Errorf("link %q is not signed", link)
			}
			if key != nil {
				link = checkGCSSignature(t, link, &key.PublicKey)
			}
			resp, err := http.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || len(body) != 20000 {
				t.Errorf("GET the signed link: %s, %d bytes; want 200 and the output's 20000", resp.Status, len(body))
			}
		})
	}
}

// serviceAccountKeyFile writes a service account key file with a new RSA
// key to path, and returns the key.
func serviceAccountKeyFile(t *testing.T, path string) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "test-project", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		"client_email": "collector@test-project.iam.gserviceaccount.com", "client_id": "1", "token_uri": "http://127.0.0.1:9/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// checkGCSSignature fails the test unless link (a V2 signed URL) carries
// the key's signature of a GET of its object until its expiry, and returns
// it in http (the test's fake-gcs-server speaks no TLS).
func checkGCSSignature(t *testing.T, link string, pub *rsa.PublicKey) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig, err := base64.StdEncoding.DecodeString(q.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("GET\n\n\n" + q.Get("Expires") + "\n" + u.EscapedPath()))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("link %s: not signed by the service account's key: %v", link, err)
	}
	if q.Get("GoogleAccessId") != "collector@test-project.iam.gserviceaccount.com" {
		t.Errorf("link %s: not signed as the key's service account", link)
	}
	u.Scheme = "http"
	return u.String()
}

// TestReportSidecarOnSIGTERM: a sidecar ended by SIGTERM records its
// attempt (no exit code: it runs no command) and writes the page within its
// shutdown budget, and exits 0.
func TestReportSidecarOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(filepath.Join(dir, "outputs"), 0o755)
	os.WriteFile(filepath.Join(dir, "outputs", "a.txt"), []byte("a"), 0o644)
	p := start(t, dir, nil, "--store", store, "--run", "side", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--sync-interval", "0.2", "--resources-interval", "0.2", "--shutdown-timeout", "10")
	waitFor(t, 30*time.Second, "the output in the store", func() bool {
		_, err := os.Stat(filepath.Join(store, "side", "outputs", "a.txt"))
		return err == nil
	})
	if code := p.stop(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d; want 0", code)
	}
	data, err := os.ReadFile(filepath.Join(store, "side", report.AttemptKey("", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var rec report.AttemptRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Mode != "sidecar" || rec.ExitCode != nil {
		t.Errorf("record %s; want sidecar mode, no exit code", data)
	}
	page, err := os.ReadFile(filepath.Join(store, "side", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, string(page), "", `href="./outputs/a.txt"`, "attempt 1")
}

func TestReportBudget(t *testing.T) {
	c := &attemptClock{started: time.Now()}
	if got := c.reportBudget(25 * time.Second); got != time.Minute {
		t.Errorf("before a SIGTERM: %v; want a minute", got)
	}
	c.term.Store(time.Now().Add(-20 * time.Second).UnixNano())
	if got := c.reportBudget(25 * time.Second); got > 4*time.Second || got < 3*time.Second {
		t.Errorf("20 s after a SIGTERM with 25 s of budget: %v; want about 4 s (the rest less a second)", got)
	}
}

// notices publishes preemption notices as the preemption watch does.
type notices struct {
	kinds    []string
	deadline time.Time
}

func (n notices) Describe(ch chan<- *prometheus.Desc) {
	ch <- preemptionNotice
	ch <- preemptionDeadline
}

func (n notices) Collect(ch chan<- prometheus.Metric) {
	interrupted := false
	for _, k := range n.kinds {
		ch <- prometheus.MustNewConstMetric(preemptionNotice, prometheus.GaugeValue, 1, "aws", k)
		interrupted = interrupted || k == "interruption"
	}
	if !interrupted {
		ch <- prometheus.MustNewConstMetric(preemptionNotice, prometheus.GaugeValue, 0, "aws", "interruption")
	}
	if !n.deadline.IsZero() {
		ch <- prometheus.MustNewConstMetric(preemptionDeadline, prometheus.GaugeValue, float64(n.deadline.Unix()), "aws")
	}
}

// TestPreemptionNoticeInTheRecord: the notice the collector's metrics
// publish goes into the attempt's record, an interruption with its
// deadline before a rebalance recommendation.
func TestPreemptionNoticeInTheRecord(t *testing.T) {
	deadline := time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		n    *notices
		want *report.Preemption
	}{
		{"none", &notices{}, nil},
		{"rebalance", &notices{kinds: []string{"rebalance"}}, &report.Preemption{Cloud: "aws", Action: "rebalance"}},
		{"interruption", &notices{kinds: []string{"rebalance", "interruption"}, deadline: deadline}, &report.Preemption{Cloud: "aws", Action: "interruption", Deadline: deadline}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(tc.n)
			c := &collector{probe: &probe.Probe{Metrics: reg}}
			got := c.preemptionNotice()
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}
