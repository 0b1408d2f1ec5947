package gcs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"gocloud.dev/blob/gcsblob"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/mlsidecar/collector/internal/errbody"
	"github.com/mlsidecar/collector/stores"
)

// Signed URLs (blob.Bucket.SignedURL, the report's links to the outputs)
// are signed as a service account: with its private key where a key file
// gives one (GC_KEY_PATH, GC_KEYFILE_DICT, GOOGLE_APPLICATION_CREDENTIALS),
// else by the IAM Credentials API's signBlob as the service account the
// credentials act as (workload identity, GCE's metadata server, an
// impersonated or federated account), which needs
// iam.serviceAccounts.signBlob on that account
// (roles/iam.serviceAccountTokenCreator). User credentials cannot sign.

// iamEndpoint is the IAM Credentials API.
const iamEndpoint = "https://iamcredentials.googleapis.com"

// iamScope is the scope the IAM Credentials API takes.
const iamScope = "https://www.googleapis.com/auth/cloud-platform"

// signing sets opts' signer (GoogleAccessID with PrivateKey or
// MakeSignBytes). Where there is none it returns why, for a debug line:
// the bucket then signs nothing, and the report lists paths without links.
func signing(ctx context.Context, creds stores.Credentials, opts *gcsblob.Options) (why string) {
	data, from, err := keyFile(creds)
	if err != nil {
		return err.Error()
	}
	if data != nil {
		var key credentialsFile
		if err := json.Unmarshal(data, &key); err != nil {
			return fmt.Sprintf("%s is not a credentials file: %v", from, err)
		}
		if key.Type == "service_account" {
			if key.ClientEmail == "" || key.PrivateKey == "" {
				return from + " is a service account key without client_email or private_key"
			}
			opts.GoogleAccessID, opts.PrivateKey = key.ClientEmail, []byte(key.PrivateKey)
			return ""
		}
	}
	if creds.Getenv("STORAGE_EMULATOR_HOST") != "" {
		return "STORAGE_EMULATOR_HOST is set and no service account key is given"
	}
	// The token source may keep its context for its refreshes: it must
	// outlive Open.
	tctx := context.WithoutCancel(ctx)
	var dc *google.Credentials
	if data != nil {
		dc, err = google.CredentialsFromJSON(tctx, data, iamScope)
	} else {
		from = "the default credentials"
		dc, err = google.FindDefaultCredentials(tctx, iamScope)
	}
	if err != nil {
		return fmt.Sprintf("%s: %v", from, err)
	}
	email, why := serviceAccount(ctx, dc.JSON, from)
	if email == "" {
		return why
	}
	signer := &iamSigner{client: oauth2.NewClient(tctx, dc.TokenSource), endpoint: iamEndpoint, email: email}
	opts.GoogleAccessID, opts.MakeSignBytes = email, signer.makeSignBytes
	return ""
}

// credentialsFile holds the fields of a Google credentials file that say
// who it signs as.
type credentialsFile struct {
	Type                           string `json:"type"`
	ClientEmail                    string `json:"client_email"`
	PrivateKey                     string `json:"private_key"`
	ServiceAccountImpersonationURL string `json:"service_account_impersonation_url"`
}

// keyFile returns the credentials file the connection or the environment
// names (GOOGLE_APPLICATION_CREDENTIALS, as Google's default chain reads
// it), and where it came from; none for the rest of the default chain.
func keyFile(creds stores.Credentials) ([]byte, string, error) {
	data, from, err := connectionKey(creds)
	if data != nil || err != nil {
		return data, from, err
	}
	if path := creds.Getenv("GOOGLE_APPLICATION_CREDENTIALS"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("read GOOGLE_APPLICATION_CREDENTIALS %q: %w", path, stores.UnwrapPathError(err))
		}
		return data, "GOOGLE_APPLICATION_CREDENTIALS", nil
	}
	return nil, "", nil
}

// connectionKey returns the service account key a Polyaxon connection
// gives (GC_KEY_PATH, GC_KEYFILE_DICT), and which.
func connectionKey(creds stores.Credentials) ([]byte, string, error) {
	keyPath := creds.Path("GC_KEY_PATH")
	if keyPath == "" {
		keyPath = creds.Get("GC_KEY_PATH")
	}
	switch {
	case keyPath != "":
		data, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, "", fmt.Errorf("read GC_KEY_PATH %q: %w", keyPath, stores.UnwrapPathError(err))
		}
		return data, "GC_KEY_PATH", nil
	case creds.Get("GC_KEYFILE_DICT") != "":
		return []byte(creds.Get("GC_KEYFILE_DICT")), "GC_KEYFILE_DICT", nil
	}
	return nil, "", nil
}

// serviceAccount is the service account that credentials (their file, or
// none for the metadata server's) act as, or why there is none.
func serviceAccount(ctx context.Context, data []byte, from string) (email, why string) {
	if data == nil {
		// GCE, or GKE's workload identity: the metadata server's account.
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		email, err := metadata.EmailWithContext(mctx, "default")
		if err != nil {
			return "", fmt.Sprintf("the metadata server's service account: %v", err)
		}
		return email, ""
	}
	var f credentialsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return "", fmt.Sprintf("%s is not a credentials file: %v", from, err)
	}
	if u := f.ServiceAccountImpersonationURL; u != "" {
		// .../projects/-/serviceAccounts/NAME@PROJECT.iam.gserviceaccount.com:generateAccessToken
		if i := strings.LastIndex(u, "/serviceAccounts/"); i >= 0 {
			email, _, _ = strings.Cut(u[i+len("/serviceAccounts/"):], ":")
			if email, err := url.PathUnescape(email); err == nil && email != "" {
				return email, ""
			}
		}
		return "", fmt.Sprintf("%s: no service account in service_account_impersonation_url", from)
	}
	return "", fmt.Sprintf("%s holds credentials of type %q, which cannot sign: use a service account key, or a service account identity (workload identity, GCE, impersonation)", from, f.Type)
}

// iamSigner signs bytes as a service account through the IAM Credentials
// API's signBlob.
type iamSigner struct {
	client   *http.Client // authenticated, with iamScope
	endpoint string
	email    string
}

func (s *iamSigner) makeSignBytes(ctx context.Context) gcsblob.SignBytesFunc {
	return func(p []byte) ([]byte, error) { return s.sign(ctx, p) }
}

// sign returns p's signature by the service account's key (RSA SHA-256).
func (s *iamSigner) sign(ctx context.Context, p []byte) ([]byte, error) {
	body, err := json.Marshal(map[string]string{"payload": base64.StdEncoding.EncodeToString(p)})
	if err != nil {
		return nil, err
	}
	u := s.endpoint + "/v1/projects/-/serviceAccounts/" + url.PathEscape(s.email) + ":signBlob"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign as %s with the IAM Credentials API: %w", s.email, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sign as %s with the IAM Credentials API: %s: %s (signing needs iam.serviceAccounts.signBlob on that account: roles/iam.serviceAccountTokenCreator)",
			s.email, resp.Status, googleMessage(resp.Body))
	}
	var out struct {
		SignedBlob string `json:"signedBlob"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("sign as %s with the IAM Credentials API: read the answer: %w", s.email, err)
	}
	sig, err := base64.StdEncoding.DecodeString(out.SignedBlob)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("sign as %s with the IAM Credentials API: no signature in the answer", s.email)
	}
	return sig, nil
}

// googleMessage reads the message of a Google API's error answer,
// {"error": {"message": ...}}, else the body's text.
func googleMessage(r io.Reader) string {
	data, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	var v struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &v) == nil && v.Error.Message != "" {
		return v.Error.Message
	}
	return errbody.Message(bytes.NewReader(data))
}
