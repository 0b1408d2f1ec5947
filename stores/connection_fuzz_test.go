package stores

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseBucketURL: a bucket URL that parses, written again from its
// parts, parses to the same parts; a password put in any URL shows in no
// error and no connection's name.
func FuzzParseBucketURL(f *testing.F) {
	for _, s := range []string{
		"s3://artifacts/team?endpoint=http://127.0.0.1:7070&use_path_style=true",
		"gs://bucket/a/b/",
		"wasbs://outputs@acct.blob.core.windows.net/runs",
		"azblob://outputs?storage_account=acct&domain=127.0.0.1:10000&protocol=http",
		"mem://",
		"file:///mnt/artifacts",
	} {
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, k uint8, raw string) {
		kinds := []string{KindS3, KindGCS, KindWASB, KindMemory}
		kind := kinds[int(k)%len(kinds)]
		b, err := ParseBucketURL(kind, raw)
		if err == nil {
			u, _ := url.Parse(raw)
			again := url.URL{Scheme: u.Scheme, Host: b.Bucket, Path: "/" + b.Prefix, RawQuery: b.Params.Encode()}
			if kind == KindWASB && u.Scheme != "azblob" {
				again.User, again.Host = url.User(b.Bucket), b.Account+"."+b.Domain
			}
			b2, err := ParseBucketURL(kind, again.String())
			if err != nil {
				t.Fatalf("%s %q parsed to %+v; written again as %q: %v", kind, raw, b, again.String(), err)
			}
			if !reflect.DeepEqual(b, b2) {
				t.Fatalf("%s %q parsed to %+v; written again as %q, to %+v", kind, raw, b, again.String(), b2)
			}
		}

		// The same URL with a password.
		const password = "Pa55w0rdXyzzy"
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok || strings.Contains(raw, password) {
			return
		}
		withPassword := scheme + "://user:" + password + "@" + rest
		if _, err := ParseBucketURL(kind, withPassword); err != nil && strings.Contains(err.Error(), password) {
			t.Fatalf("%q: the error shows the password: %v", withPassword, err)
		}
		c, err := Resolve(withPassword)
		if err != nil && strings.Contains(err.Error(), password) {
			t.Fatalf("--store %q: the error shows the password: %v", withPassword, err)
		}
		if err == nil && (strings.Contains(c.Name, password) || strings.Contains(Describe(c), password)) {
			t.Fatalf("--store %q: the connection shows the password: %q, %q", withPassword, c.Name, Describe(c))
		}
	})
}

// FuzzCatalog: any bytes as a connections file or POLYAXON_CONNECTIONS_CATALOG:
// a catalog, or a ConfigError naming where it came from, never a panic. The
// store a catalog resolves to is a valid connection, and written again as
// the catalog's artifactsStore (JSON) resolves to the same.
func FuzzCatalog(f *testing.F) {
	mixed, _ := os.ReadFile("testdata/catalog-mixed.yaml")
	f.Add(mixed, "")
	f.Add([]byte(`{"connections":[{"name":"out","kind":"volume_claim","schema":{"mountPath":"/mnt/out","volumeClaim":"pvc"}}]}`), "out")
	f.Add([]byte("artifactsStore:\n  name: a\n  kind: host_path\n  schema: {mountPath: /data, hostPath: /data}\n"), "")
	f.Add([]byte("artifactStore: {}\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, store string) {
		cat, err := CatalogFromEnv(func(name string) string {
			if name == EnvCatalog {
				return string(data)
			}
			return ""
		})
		var ce *ConfigError
		if err != nil {
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Setting, EnvCatalog) {
				t.Fatalf("%q: %v, want a ConfigError naming %s", data, err, EnvCatalog)
			}
			return
		}
		if cat == nil {
			return // empty
		}
		c, err := Resolve(store, cat)
		if err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("%q, --store %q: %v is no ConfigError", data, store, err)
			}
			return
		}
		Unused(c, cat)
		if err := c.Validate(); err != nil {
			t.Fatalf("%q resolved to a connection that is not valid: %v", data, err)
		}
		if !strings.HasPrefix(c.setting, EnvCatalog) {
			return // a path or URL, not the catalog's
		}
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseCatalog(append(append([]byte(`{"artifactsStore":`), enc...), '}'), "again")
		if err != nil {
			t.Fatalf("%q resolved to %s, which as a catalog is refused: %v", data, enc, err)
		}
		c2, err := Resolve("", again)
		if err != nil {
			t.Fatalf("%q resolved to %s, which as a catalog does not resolve: %v", data, enc, err)
		}
		c.setting, c2.setting = "", ""
		if enc2, _ := json.Marshal(c2); string(enc2) != string(enc) {
			t.Fatalf("%q resolved to\n%s\nwritten again as a catalog, to\n%s", data, enc, enc2)
		}
	})
}
