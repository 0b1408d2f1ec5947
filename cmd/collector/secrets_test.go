package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestSecretsNeverPrinted starts the collector with each kind of credential
// against an endpoint that does not answer, and checks that no secret value
// is in anything it printed (stdout, stderr) or wrote (state and outputs
// folders; the key file aside).
func TestSecretsNeverPrinted(t *testing.T) {
	endpoint := closedEndpoint(t)
	s3Key, s3Secret, s3Token := "AKIASECRETSTEST0001", "s3-secret-key-0123456789abcdef", "s3-session-token-FwoGZXIvYXdzEXAMPLE"
	azureKey := base64.StdEncoding.EncodeToString([]byte("azure-account-key-that-is-secret-0123456789"))
	sasSig := "c2FzLXNpZ25hdHVyZS1zZWNyZXQ%3D"
	sas := "sv=2022-11-02&ss=b&srt=sco&sp=rwdlac&se=2031-07-15T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https,http&sig=" + sasSig
	gcsKey, gcsSecrets := serviceAccountKey(t, "http://"+endpoint+"/token")
	azureAt := "azblob://container?storage_account=acct&localemu=true&protocol=http&domain=" + endpoint

	tests := []struct {
		name    string
		env     map[string]string
		store   string
		files   map[string]string // written under the test's folder first
		secrets []string
	}{
		{
			name:    "S3 access key, secret and session token",
			env:     map[string]string{"AWS_ACCESS_KEY_ID": s3Key, "AWS_SECRET_ACCESS_KEY": s3Secret, "AWS_SESSION_TOKEN": s3Token},
			store:   "s3://bucket/runs?endpoint=http://" + endpoint,
			secrets: []string{s3Secret, s3Token, s3Key},
		},
		{
			name:    "GCS key file (GC_KEY_PATH)",
			env:     map[string]string{"GC_KEY_PATH": "{dir}/key.json"},
			files:   map[string]string{"key.json": gcsKey},
			store:   "gs://bucket/runs",
			secrets: gcsSecrets,
		},
		{
			name:    "GCS key in the environment (GC_KEYFILE_DICT)",
			env:     map[string]string{"GC_KEYFILE_DICT": gcsKey},
			store:   "gs://bucket/runs",
			secrets: gcsSecrets,
		},
		{
			name:    "Azure account key",
			env:     map[string]string{"AZURE_ACCOUNT_KEY": azureKey},
			store:   azureAt,
			secrets: []string{azureKey},
		},
		{
			name:    "Azure connection string",
			env:     map[string]string{"AZURE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=" + azureKey + ";BlobEndpoint=http://" + endpoint + "/acct;"},
			store:   "azblob://container/runs",
			secrets: []string{azureKey},
		},
		{
			name:    "Azure SAS token in the environment",
			env:     map[string]string{"AZURE_SAS_TOKEN": "?" + sas},
			store:   azureAt,
			secrets: []string{sasSig},
		},
		{
			name:    "Azure SAS inside a connection string",
			env:     map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "BlobEndpoint=http://" + endpoint + "/acct;SharedAccessSignature=" + sas},
			store:   "azblob://container/runs",
			secrets: []string{sasSig},
		},
		{
			name:    "Azure SAS pasted into the store URL",
			store:   azureAt + "&" + sas,
			secrets: []string{sasSig},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sub := func(s string) string { return strings.ReplaceAll(s, "{dir}", dir) }
			keyFiles := map[string]bool{}
			for name, body := range tt.files {
				writeFile(t, filepath.Join(dir, name), []byte(body))
				keyFiles[filepath.Join(dir, name)] = true
			}
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = sub(v)
			}
			args := []string{"--outputs-path", filepath.Join(dir, "outputs"), "--state-dir", filepath.Join(dir, "state"),
				"--run", "r1", "--store", tt.store, "--log-level", "debug"}
			writeFile(t, filepath.Join(dir, "outputs", "a.txt"), []byte("hello"))

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code == 0 {
				t.Fatalf("exit code 0 with a store that does not answer; output:\n%s", out)
			}
			if !strings.Contains(out, "store") {
				t.Fatalf("the output does not say what failed:\n%s", out)
			}
			for _, s := range tt.secrets {
				for i, line := range strings.Split(out, "\n") {
					if strings.Contains(line, s) {
						t.Errorf("output line %d holds the secret %q:\n%s", i+1, s, line)
					}
				}
			}
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || keyFiles[path] {
					return err
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				for _, s := range tt.secrets {
					if bytes.Contains(data, []byte(s)) {
						t.Errorf("%s holds the secret %q", path, s)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// closedEndpoint returns host:port of 127.0.0.1 where nothing listens.
func closedEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// serviceAccountKey returns a GCS service account key file (JSON) with a new
// private key and tokenURI, and the values in it that are secret.
func serviceAccountKey(t *testing.T, tokenURI string) (string, []string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	keyID := "0123456789abcdef0123456789abcdef01234567"
	data, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "project",
		"private_key_id": keyID,
		"private_key":    pemKey,
		"client_email":   "collector@project.iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"token_uri":      tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	// A line of the key's base64 is enough to find it, in whatever form it
	// would be printed (the JSON escapes only the newlines).
	lines := strings.Split(pemKey, "\n")
	return string(data), []string{keyID, lines[1], lines[len(lines)/2]}
}

// TestSecretsNeverPrintedAfterStart runs the collector on Azurite with a SAS
// token, through a proxy that cuts the connection of some requests once the
// store has been checked: the uploads of a small file and of a large one
// (over --part-size: the resumable uploader), then, on a retry of the run,
// the restore's reads. A cut connection is the error that quotes the
// request's URL, SAS included.
func TestSecretsNeverPrintedAfterStart(t *testing.T) {
	t.Parallel()
	f := storetest.Azure(t)
	account, key := os.Getenv("COLLECTOR_TEST_AZURE_ACCOUNT"), os.Getenv("COLLECTOR_TEST_AZURE_KEY")
	target, err := url.Parse(os.Getenv("COLLECTOR_TEST_AZURE_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azblob.NewSharedKeyCredential(account, key)
	if err != nil {
		t.Fatal(err)
	}
	perms := sas.AccountPermissions{Read: true, Write: true, Delete: true, List: true, Add: true, Create: true}
	resources := sas.AccountResourceTypes{Service: true, Container: true, Object: true}
	qp, err := sas.AccountSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    time.Now().Add(time.Hour).UTC(),
		Permissions:   perms.String(),
		ResourceTypes: resources.String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{qp.Signature(), url.QueryEscape(qp.Signature()), key}

	var cut atomic.Value // func(*http.Request) bool
	cut.Store(func(*http.Request) bool { return false })
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut.Load().(func(*http.Request) bool)(r) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	container := strings.SplitN(strings.TrimPrefix(f.Conn.Schema.Bucket, "wasbs://"), "@", 2)[0]
	store := fmt.Sprintf("azblob://%s/runs?storage_account=%s&localemu=true&protocol=http&domain=%s",
		container, account, strings.TrimPrefix(proxy.URL, "http://"))
	env := map[string]string{"AZURE_SAS_TOKEN": qp.Encode()}
	outputsObject := func(method string) func(*http.Request) bool {
		return func(r *http.Request) bool {
			return r.Method == method && strings.Contains(r.URL.Path, "/outputs/")
		}
	}

	dir := t.TempDir()
	collector := func(name string, args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var stdout, stderr bytes.Buffer
		args = append([]string{"--outputs-path", filepath.Join(dir, name, "outputs"), "--state-dir", filepath.Join(dir, name, "state"),
			"--run", "r1", "--store", store, "--log-level", "debug", "--shutdown-timeout", "2", "--sync-interval", "0", "--part-size", "5MiB"}, args...)
		code := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		for _, s := range secrets {
			for i, line := range strings.Split(out, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("%s: output line %d holds the secret %q:\n%s", name, i+1, s, line)
				}
			}
		}
		return code, out
	}

	// Attempt 1: the uploads are cut.
	writeFile(t, filepath.Join(dir, "upload", "outputs", "small.txt"), []byte("hello"))
	writeFile(t, filepath.Join(dir, "upload", "outputs", "large.bin"), bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16))
	cut.Store(outputsObject(http.MethodPut))
	if code, out := collector("upload", "--", "true"); code == 0 || !strings.Contains(out, "upload part") || !strings.Contains(out, "small.txt") {
		t.Errorf("upload: exit %d, and the output does not name the uploads that failed:\n%s", code, out)
	}
	// Attempt 2 stores them; attempt 3, on a new pod, cannot read them back.
	cut.Store(func(*http.Request) bool { return false })
	if code, out := collector("store", "--outputs-path", filepath.Join(dir, "upload", "outputs"), "--state-dir", filepath.Join(dir, "upload", "state"), "--", "true"); code != 0 {
		t.Fatalf("store: exit %d:\n%s", code, out)
	}
	cut.Store(outputsObject(http.MethodGet))
	if code, out := collector("restore", "--", "true"); code == 0 || !strings.Contains(out, "restore") {
		t.Errorf("restore: exit %d, and the output does not say the restore failed:\n%s", code, out)
	}

	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds the secret %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
