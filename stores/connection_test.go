package stores

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestMixedCatalog reads an agent's catalog that holds, beside the store,
// connections of kinds the collector has no use for (git, registry,
// notifiers, custom, a configMap, kinds it does not know, a duplicate name,
// one without a name): only the connection used is validated, from the file
// and from POLYAXON_CONNECTIONS_CATALOG alike.
func TestMixedCatalog(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "catalog-mixed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fileCat, err := LoadCatalog(filepath.Join("testdata", "catalog-mixed.yaml"))
	if err != nil {
		t.Fatalf("the file: %v", err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	asJSON, _ := json.Marshal(v)
	envCat, err := CatalogFromEnv(func(k string) string {
		return map[string]string{EnvCatalog: string(asJSON), EnvArtifactsStoreName: "datasets"}[k]
	})
	if err != nil {
		t.Fatalf("%s: %v", EnvCatalog, err)
	}
	noStore := &Catalog{ArtifactsStoreName: "datasets", entries: envCat.entries, source: EnvCatalog}

	tests := []struct {
		name      string
		store     string
		cat       *Catalog
		wantKind  string
		wantWhere string
		err       []string
	}{
		{name: "artifactsStore", cat: fileCat, wantKind: KindS3, wantWhere: "s3://artifacts/team"},
		{name: "artifactsStore from the environment", cat: envCat, wantKind: KindS3, wantWhere: "s3://artifacts/team"},
		{name: "POLYAXON_ARTIFACTS_STORE_NAME", cat: noStore, wantKind: KindVolumeClaim, wantWhere: "/datasets"},
		{name: "by name", store: "datasets", cat: fileCat, wantKind: KindVolumeClaim, wantWhere: "/datasets"},
		{name: "snake_case keys", store: "scratch", cat: fileCat, wantKind: KindHostPath, wantWhere: "/scratch"},
		{name: "a URL leaves the catalog alone", store: "gs://other/p", cat: fileCat, wantKind: KindGCS, wantWhere: "gs://other/p"},
		{name: "a git connection is not a store", store: "repo-ml", cat: fileCat, err: []string{"connections[0].kind", `"git" is not a store kind`}},
		{name: "a custom connection is not a store", store: "feature-store", cat: fileCat, err: []string{"connections[4].kind", `"custom" is not a store kind`}},
		{name: "an unknown kind is not a store", store: "warehouse", cat: fileCat, err: []string{"connections[5].kind", `"postgres" is not a store kind`, "host_path, volume_claim, s3, gcs, wasb"}},
		{name: "a name two connections share", store: "slack-ml", cat: fileCat, err: []string{"connections[9].name", "appears twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Resolve(tt.store, tt.cat)
			if len(tt.err) > 0 {
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a ConfigError", err)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
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

	t.Run("the others are listed", func(t *testing.T) {
		c, err := Resolve("", fileCat)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(Unused(c, fileCat), ", ")
		want := "repo-ml (git), docker-registry (registry), slack-ml (slack), pagerduty (pagerduty), feature-store (custom), warehouse (postgres), datasets (volume_claim), scratch (host_path), newer (vector_db), slack-ml (slack),  (webhook)"
		if got != want {
			t.Errorf("unused:\n got %s\nwant %s", got, want)
		}
		if c.Env[1].Name != "AWS_ENDPOINT_URL" || c.Annotations["iam.amazonaws.com/role"] != "artifacts-writer" {
			t.Errorf("the store's env and annotations: %+v %v", c.Env, c.Annotations)
		}
	})
}

// TestCatalogRefusals: what is refused whatever the store, and the store's
// own faults.
func TestCatalogRefusals(t *testing.T) {
	tests := []struct {
		name, body string
		err        []string
	}{
		{"not YAML", "artifactsStore: [unclosed", []string{"not a valid connections catalog"}},
		{"connections not a list", "connections: {name: a}", []string{"connections: want a list"}},
		{"a misspelt artifactsStore", "artifactStore: {name: a, kind: s3, schema: {bucket: 's3://b'}}", []string{`"artifactStore"`, "did you mean artifactsStore?"}},
		{"the store's misspelt key", "artifactsStore: {name: a, kind: s3, schema: {bukket: 's3://b'}}", []string{"artifactsStore.schema.bukket", "did you mean bucket?"}},
		{"the store's unknown key", "artifactsStore: {name: a, kind: s3, schema: {bucket: 's3://b'}, region: x}", []string{"artifactsStore.region", "valid keys: name, kind"}},
		{"the store's secret", "artifactsStore: {name: a, kind: s3, schema: {bucket: 's3://b'}, secret: {name: s, mountpath: /x}}", []string{"artifactsStore.secret.mountpath", "did you mean mountPath?"}},
		{"the store of a kind that is no store", "artifactsStore: {name: a, kind: git, schema: {url: 'x'}}", []string{"artifactsStore.kind", `"git" is not a store kind`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat, err := parseCatalog([]byte(tt.body), "--connections c.yaml")
			if err == nil {
				_, err = Resolve("", cat)
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tt.err, "--connections c.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
