package stores

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	fileCat, err := parseCatalog([]byte(`
artifactsStore:
  name: main-store
  kind: s3
  schema: {bucket: "s3://artifacts/team"}
  secret: {name: s3-secret}
connections:
  - name: my-volume
    kind: volume_claim
    schema: {mountPath: /tmp/outputs, volumeClaim: outputs-2-pvc}
  - name: azure-bucket
    kind: wasb
    schema: {"bucket": "wasbs://container@user.blob.core.windows.net/"}
    secret: {name: az-secret}
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	envCat, err := CatalogFromEnv(func(k string) string {
		return map[string]string{
			EnvCatalog:            `{"connections": [{"name": "gcs-bucket2", "kind": "gcs", "schema": {"bucket": "gs://bucket/"}, "secret": {"name": "gcs-secret"}}]}`,
			EnvArtifactsStoreName: "gcs-bucket2",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		store     string
		cats      []*Catalog
		wantKind  string
		wantWhere string
	}{
		{"", nil, KindHostPath, "./artifacts"},
		{"", []*Catalog{fileCat}, KindS3, "s3://artifacts/team"},
		{"", []*Catalog{nil, envCat}, KindGCS, "gs://bucket/"},
		{"", []*Catalog{fileCat, envCat}, KindS3, "s3://artifacts/team"},
		{"my-volume", []*Catalog{fileCat}, KindVolumeClaim, "/tmp/outputs"},
		{"gcs-bucket2", []*Catalog{fileCat, envCat}, KindGCS, "gs://bucket/"},
		{"/data/artifacts", nil, KindHostPath, "/data/artifacts"},
		{"./out", nil, KindHostPath, "./out"},
		{"file:///data/x", nil, KindHostPath, "/data/x"},
		{"s3://b/p?endpoint=http://127.0.0.1:7070&region=eu-west-1", nil, KindS3, "s3://b/p?endpoint=http://127.0.0.1:7070&region=eu-west-1"},
		{"gs://b/p", nil, KindGCS, "gs://b/p"},
		{"azblob://c?domain=127.0.0.1:10000&protocol=http&storage_account=devstoreaccount1", nil, KindWASB, "azblob://c?domain=127.0.0.1:10000&protocol=http&storage_account=devstoreaccount1"},
		{"wasbs://c@acct.blob.core.windows.net/p", nil, KindWASB, "wasbs://c@acct.blob.core.windows.net/p"},
	}
	for _, tt := range tests {
		t.Run(tt.store, func(t *testing.T) {
			c, err := Resolve(tt.store, tt.cats...)
			if err != nil {
				t.Fatal(err)
			}
			where := c.Schema.Bucket
			if c.Kind == KindHostPath || c.Kind == KindVolumeClaim {
				where = c.Schema.MountPath
			}
			if c.Kind != tt.wantKind || where != tt.wantWhere {
				t.Errorf("got %s %s, want %s %s", c.Kind, where, tt.wantKind, tt.wantWhere)
			}
		})
	}
}

func TestParseBucketURL(t *testing.T) {
	tests := []struct {
		kind, raw                       string
		bucket, account, domain, prefix string
	}{
		{KindS3, "s3://bucket/", "bucket", "", "", ""},
		{KindS3, "s3://bucket/optional/prefix", "bucket", "", "", "optional/prefix"},
		{KindGCS, "gs://bucket/prefix/", "bucket", "", "", "prefix"},
		{KindWASB, "wasbs://container@acct.blob.core.windows.net/p", "container", "acct", "blob.core.windows.net", "p"},
		{KindWASB, "wasb://container@acct.blob.core.chinacloudapi.cn", "container", "acct", "blob.core.chinacloudapi.cn", ""},
	}
	for _, tt := range tests {
		b, err := ParseBucketURL(tt.kind, tt.raw)
		if err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		if b.Bucket != tt.bucket || b.Account != tt.account || b.Domain != tt.domain || b.Prefix != tt.prefix {
			t.Errorf("%s: got %+v", tt.raw, b)
		}
	}
}

func TestCredentialsFromSecretFolder(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "id\n", "AWS_SECRET_ACCESS_KEY": "secret", "..data": "ignored"} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := Connection{Name: "s", Kind: KindS3, Schema: Schema{Bucket: "s3://b"}, Secret: &Secret{Name: "s", MountPath: dir}}
	creds, err := loadCredentials(c, func(k string) string { return map[string]string{"AWS_REGION": "eu-west-3"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := creds.Get("AWS_ACCESS_KEY_ID"); got != "id" {
		t.Errorf("AWS_ACCESS_KEY_ID = %q, want id", got)
	}
	if got := creds.Get("AWS_REGION"); got != "eu-west-3" {
		t.Errorf("AWS_REGION from the environment = %q", got)
	}
}

func TestOpenReadOnlyRefused(t *testing.T) {
	c := Connection{Name: "ro", Kind: KindHostPath, Schema: Schema{MountPath: t.TempDir(), ReadOnly: true}}
	_, err := Open(context.Background(), c, Options{ForWriting: true})
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("err = %v, want a ConfigError saying read-only", err)
	}
	b, err := Open(context.Background(), c, Options{})
	if err != nil {
		t.Fatalf("a read-only store must open for reading: %v", err)
	}
	b.Close()
}

func TestDescribeHidesCredentials(t *testing.T) {
	c, err := Resolve("s3://bucket/p?endpoint=http://127.0.0.1:7070")
	if err != nil {
		t.Fatal(err)
	}
	if got := Describe(c); got != "s3 s3://bucket/p?endpoint=http://127.0.0.1:7070" {
		t.Errorf("Describe = %q", got)
	}
	if _, err := Resolve("s3://user:pass@bucket/"); err == nil || strings.Contains(err.Error(), "pass@") {
		t.Errorf("a URL with a password: err = %v, want an error without the password", err)
	}
}
