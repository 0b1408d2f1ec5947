package gcs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/gcerrors"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/mlsidecar/collector/stores"
)

const testAccount = "collector@test-project.iam.gserviceaccount.com"

// serviceAccountKey returns a new RSA key and a service account key file
// holding it, as the Cloud console downloads one.
func serviceAccountKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "test-project", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": testAccount, "client_id": "1", "token_uri": "http://127.0.0.1:9/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return key, data
}

// CheckSignedURL fails the test unless link is a GCS V2 signed URL of
// object (/bucket/key, escaped) by account, valid about expiry from now,
// whose signature key's public half verifies.
func checkSignedURL(t *testing.T, link string, pub *rsa.PublicKey, object string, expiry time.Duration) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.EscapedPath() != object || q.Get("GoogleAccessId") != testAccount {
		t.Fatalf("signed URL %s: want the object %s, signed by %s", link, object, testAccount)
	}
	expires, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	if d := time.Until(time.Unix(expires, 0)); err != nil || d < expiry-time.Minute || d > expiry+time.Minute {
		t.Errorf("signed URL %s expires in %v; want %v", link, d, expiry)
	}
	sig, err := base64.StdEncoding.DecodeString(q.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("GET\n\n\n" + q.Get("Expires") + "\n" + u.EscapedPath()))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signed URL %s: the signature is not the service account's: %v", link, err)
	}
}

// openGCS opens a GCS connection as the collector does, with env as its
// environment, and returns its bucket and its debug log.
func openGCS(t *testing.T, env map[string]string) (*blob.Bucket, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	conn := stores.Connection{Kind: stores.KindGCS, Schema: stores.Schema{Bucket: "gs://bkt/prefix"}}
	store, err := stores.Open(context.Background(), conn, stores.Options{
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store.Bucket(), &logs
}

// TestSignedURLWithAKeyFile: a service account key, from
// GOOGLE_APPLICATION_CREDENTIALS or the connection's GC_KEYFILE_DICT,
// signs the bucket's URLs with its private key.
func TestSignedURLWithAKeyFile(t *testing.T) {
	key, data := serviceAccountKey(t)
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9") // signing asks no server
	for name, env := range map[string]map[string]string{
		"GOOGLE_APPLICATION_CREDENTIALS": {"GOOGLE_APPLICATION_CREDENTIALS": path},
		"GC_KEYFILE_DICT":                {"GC_KEYFILE_DICT": string(data)},
	} {
		t.Run(name, func(t *testing.T) {
			env["STORAGE_EMULATOR_HOST"] = "127.0.0.1:9"
			b, _ := openGCS(t, env)
			link, err := b.SignedURL(context.Background(), "run/outputs/a b.txt", &blob.SignedURLOptions{Expiry: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			checkSignedURL(t, link, &key.PublicKey, "/bkt/prefix/run/outputs/a%20b.txt", time.Hour)
		})
	}
}

// TestNoSignerSaysWhy: user credentials cannot sign: the bucket signs
// nothing (Unimplemented, which the report takes as "no links") and one
// debug line says why.
func TestNoSignerSaysWhy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "adc.json")
	user := `{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}`
	if err := os.WriteFile(path, []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
	b, logs := openGCS(t, map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": path})
	_, err := b.SignedURL(context.Background(), "a.txt", &blob.SignedURLOptions{Expiry: time.Hour})
	if gcerrors.Code(err) != gcerrors.Unimplemented {
		t.Fatalf("SignedURL with user credentials: %v; want Unimplemented", err)
	}
	lines := strings.Count(logs.String(), "signs no URLs")
	if lines != 1 || !strings.Contains(logs.String(), `\"authorized_user\", which cannot sign`) || strings.Contains(logs.String(), "refresh_token") {
		t.Errorf("%d lines about signing; want one saying the credentials cannot sign, without a secret:\n%s", lines, logs.String())
	}
}

// TestSignBlob: without a key, the service account the metadata server
// names (GCE, GKE's workload identity) signs through the IAM Credentials
// API's signBlob, with the credentials' token; a refusal names the role it
// needs.
func TestSignBlob(t *testing.T) {
	key, _ := serviceAccountKey(t)
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Path != "/computeMetadata/v1/instance/service-accounts/default/email" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, testAccount)
	}))
	defer meta.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(meta.URL, "http://"))
	refuse := false
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/-/serviceAccounts/"+testAccount+":signBlob" || r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, `{"error": {"code": 404, "message": "unexpected request"}}`, http.StatusNotFound)
			return
		}
		if refuse {
			http.Error(w, `{"error": {"code": 403, "message": "Permission 'iam.serviceAccounts.signBlob' denied", "status": "PERMISSION_DENIED"}}`, http.StatusForbidden)
			return
		}
		var in struct{ Payload []byte }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(in.Payload)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"keyId": "k1", "signedBlob": sig})
	}))
	defer iam.Close()

	ctx := context.Background()
	email, why := serviceAccount(ctx, nil, "the default credentials")
	if email != testAccount {
		t.Fatalf("the metadata server's account: %q (%s); want %s", email, why, testAccount)
	}
	signer := &iamSigner{client: oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t0ken"})), endpoint: iam.URL, email: email}
	client, err := storage.NewClient(ctx, option.WithoutAuthentication(), option.WithEndpoint("http://127.0.0.1:9/storage/v1/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	b, err := gcsblob.OpenBucket(ctx, nil, "bkt", &gcsblob.Options{Client: client, GoogleAccessID: email, MakeSignBytes: signer.makeSignBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	link, err := b.SignedURL(ctx, "run/outputs/model.pt", &blob.SignedURLOptions{Expiry: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	checkSignedURL(t, link, &key.PublicKey, "/bkt/run/outputs/model.pt", 24*time.Hour)

	refuse = true
	_, err = b.SignedURL(ctx, "run/outputs/model.pt", &blob.SignedURLOptions{Expiry: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "signBlob' denied") || !strings.Contains(err.Error(), "roles/iam.serviceAccountTokenCreator") {
		t.Errorf("a refused signBlob: %v; want the API's message and the role it needs", err)
	}
}

// TestServiceAccountOfCredentials: an impersonated or federated
// identity signs as the account it impersonates; user credentials cannot.
func TestServiceAccountOfCredentials(t *testing.T) {
	for _, tc := range []struct {
		file, email, why string
	}{
		{`{"type": "impersonated_service_account", "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/` + testAccount + `:generateAccessToken"}`, testAccount, ""},
		{`{"type": "external_account", "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/` + url.PathEscape(testAccount) + `:generateAccessToken"}`, testAccount, ""},
		{`{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"}`, "", `type "external_account", which cannot sign`},
		{`{"type": "authorized_user"}`, "", `type "authorized_user", which cannot sign`},
	} {
		email, why := serviceAccount(context.Background(), []byte(tc.file), "GOOGLE_APPLICATION_CREDENTIALS")
		if email != tc.email || !strings.Contains(why, tc.why) {
			t.Errorf("serviceAccount(%s) = %q, %q; want %q, %q", tc.file, email, why, tc.email, tc.why)
		}
	}
}
