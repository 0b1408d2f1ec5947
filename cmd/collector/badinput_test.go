package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsidecar/collector/stores/storetest"
)

// TestBadInput checks that each malformed configuration exits with code 2,
// says which setting is wrong, and writes nothing to the store.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		args  []string          // {dir} is replaced by the test's folder
		env   map[string]string // likewise
		files map[string]string // files to create under {dir}
		want  []string          // strings the message must contain
	}{
		{name: "mistyped subcommand", args: []string{"restor", "--run", "r"}, want: []string{"unknown command \"restor\"", "restore, logs, report, version", "-- restor --run r"}},
		{name: "command without --", args: []string{"--run", "r", "python", "train.py"}, want: []string{"unknown command \"python\"", "collector [flags] -- python train.py"}},
		{name: "unknown flag", args: []string{"--colour", "red"}, want: []string{"-colour", "not defined"}},
		{name: "non-numeric interval", args: []string{"--sync-interval", "often"}, want: []string{"sync-interval", "not a number of seconds"}},
		{name: "non-numeric interval in env", env: map[string]string{"COLLECTOR_SYNC_INTERVAL": "10x"}, want: []string{"COLLECTOR_SYNC_INTERVAL", "not a number"}},
		{name: "negative shutdown timeout", args: []string{"--shutdown-timeout", "-5"}, want: []string{"--shutdown-timeout", "not positive"}},
		{name: "negative settle", args: []string{"--settle", "-1"}, want: []string{"--settle", "negative"}},
		{name: "zero workers", args: []string{"--workers", "0"}, want: []string{"--workers", "1 to 1024"}},
		{name: "commit marker with a slash", args: []string{"--commit-marker", "ckpt/commit_success.txt"}, want: []string{"--commit-marker", `"ckpt/commit_success.txt" is not a file name`, "without a slash"}},
		{name: "commit marker with a slash in env", env: map[string]string{"COLLECTOR_COMMIT_MARKER": "latest,a/b"}, want: []string{"--commit-marker", `"a/b"`}},
		{name: "commit marker with a slash in config file", args: []string{"--config", "{dir}/cfg.yaml"}, files: map[string]string{"cfg.yaml": "commit-marker: [latest, ../x]"}, want: []string{"--commit-marker", `"../x"`}},
		{name: "part size too small", args: []string{"--part-size", "1MiB"}, want: []string{"--part-size", "5MiB"}},
		{name: "part size too large", args: []string{"--part-size", "6GiB", "--memory-budget", "8GiB"}, want: []string{"--part-size", "6GiB", "5MiB to 5GiB"}},
		{name: "part size not a multiple of GCS's chunk", args: []string{"--store", "gs://b/x", "--part-size", "5500KiB"}, env: map[string]string{"STORAGE_EMULATOR_HOST": "127.0.0.1:1"}, want: []string{"--part-size", "5500KiB", "multiple of 256KiB", "gcs store"}},
		{name: "part size above the store's largest part", args: []string{"--store", "wasbs://c@devstoreaccount1.blob.core.windows.net/", "--part-size", "4500MiB", "--memory-budget", "5GiB"}, env: map[string]string{"AZURE_ACCOUNT_KEY": storetest.AzuriteKey}, want: []string{"--part-size", "4500MiB", "wasb store", "5MiB to 4000MiB"}},
		{name: "bad memory budget", args: []string{"--memory-budget", "lots"}, want: []string{"memory-budget", "not a size"}},
		{name: "memory budget below one part", args: []string{"--memory-budget", "1MiB"}, want: []string{"--memory-budget", "1MiB is below one part", "--part-size 8MiB"}},
		{name: "outputs path is a file", args: []string{"--outputs-path", "{dir}/afile"}, files: map[string]string{"afile": "x"}, want: []string{"--outputs-path", "is a file"}},
		{name: "bad run name", args: []string{"--run", "../escape"}, want: []string{"--run", "not a valid run name"}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: []string{"--log-level", "debug, info, warn, error"}},
		{name: "unknown store scheme", args: []string{"--store", "ftp://host/x"}, want: []string{"--store", "ftp", "s3://"}},
		{name: "store name not in catalog", args: []string{"--store", "nosuch"}, want: []string{"--store", "nosuch", "neither a connection name"}},
		{name: "s3 URL without bucket", args: []string{"--store", "s3:///prefix"}, want: []string{"--store", "no bucket name"}},
		{name: "s3 URL with unknown parameter", args: []string{"--store", "s3://b?endpoint=http://x&colour=red"}, want: []string{"unknown parameter \"colour\"", "endpoint, region"}},
		{name: "connections file missing", args: []string{"--connections", "{dir}/nope.yaml"}, want: []string{"--connections", "cannot read"}},
		{name: "connections file not YAML", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: [unclosed"}, want: []string{"--connections", "not a valid connections catalog"}},
		{name: "unknown kind", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: ftp, schema: {bucket: 'x'}}"}, want: []string{"artifactsStore.kind", "host_path, volume_claim, s3, gcs, wasb"}},
		{name: "unknown field in connection", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: s3, schema: {bukket: 's3://b'}}"}, want: []string{"--connections", "bukket"}},
		{name: "missing bucket", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: s3, schema: {}}"}, want: []string{"artifactsStore.schema.bucket", "is empty", "s3://bucket"}},
		{name: "bucket of the wrong scheme for its kind", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: gcs, schema: {bucket: 's3://b'}}"}, want: []string{"schema.bucket", "scheme \"s3\"", "gs://bucket"}},
		{name: "wasbs URL without account", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: wasb, schema: {bucket: 'wasbs://container@/p'}}"}, want: []string{"schema.bucket", "no storage account"}},
		{name: "wasbs URL without container", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: wasb, schema: {bucket: 'wasbs://acct.blob.core.windows.net/p'}}"}, want: []string{"schema.bucket", "no container"}},
		{name: "host path without mountPath", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: host_path, schema: {hostPath: /data}}"}, want: []string{"schema.mountPath", "is empty"}},
		{name: "volume claim not mounted", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: volume_claim, schema: {mountPath: '{dir}/not-mounted', volumeClaim: pvc}}"}, want: []string{"schema.mountPath", "not mounted"}},
		{name: "read-only store", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: host_path, schema: {mountPath: '{dir}/store', readOnly: true}}"}, want: []string{"schema.readOnly", "read-only"}},
		{name: "unreadable secret folder", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: s3, schema: {bucket: 's3://b'}, secret: {name: s, mountPath: '{dir}/no-secret'}}"}, want: []string{"secret.mountPath", "cannot read the secret folder"}},
		{name: "secret item missing", args: []string{"--connections", "{dir}/c.yaml"}, files: map[string]string{"c.yaml": "artifactsStore: {name: a, kind: s3, schema: {bucket: 's3://b'}, secret: {name: s, mountPath: '{dir}', items: [AWS_ACCESS_KEY_ID]}}"}, want: []string{"secret.mountPath", "AWS_ACCESS_KEY_ID"}},
		{name: "duplicate connection names", args: []string{"--connections", "{dir}/c.yaml", "--store", "a"}, files: map[string]string{"c.yaml": "connections: [{name: a, kind: gcs, schema: {bucket: 'gs://x'}}, {name: a, kind: gcs, schema: {bucket: 'gs://y'}}]"}, want: []string{"connections[1].name", "twice"}},
		{name: "bad catalog in environment", env: map[string]string{"POLYAXON_CONNECTIONS_CATALOG": "{not json"}, want: []string{"POLYAXON_CONNECTIONS_CATALOG", "not a valid connections catalog"}},
		{name: "artifacts store name not in catalog", env: map[string]string{"POLYAXON_CONNECTIONS_CATALOG": `{"connections": [{"name": "x", "kind": "gcs", "schema": {"bucket": "gs://b"}}]}`, "POLYAXON_ARTIFACTS_STORE_NAME": "y"}, want: []string{"POLYAXON_ARTIFACTS_STORE_NAME", "\"y\"", "x"}},
		{name: "unknown config file key", args: []string{"--config", "{dir}/cfg.yaml"}, files: map[string]string{"cfg.yaml": "sync-intervall: 3"}, want: []string{"--config", "unknown key \"sync-intervall\"", "sync-interval"}},
		{name: "bad value in config file", args: []string{"--config", "{dir}/cfg.yaml"}, files: map[string]string{"cfg.yaml": "workers: many"}, want: []string{"config file", "workers"}},
		{name: "unknown plugin", args: []string{"--plugins", "{dir}/p.yaml"}, files: map[string]string{"p.yaml": "plugins: {collectArtefacts: false}"}, want: []string{"--plugins", "collectArtefacts", "collectArtifacts"}},
		{name: "bad plugin log level", args: []string{"--plugins", "{dir}/p.yaml"}, files: map[string]string{"p.yaml": "plugins: {logLevel: shouting}"}, want: []string{"--plugins", "logLevel", "warning"}},
		{name: "bad glob", args: []string{"--exclude", "[a-"}, want: []string{"--include/--exclude", "not a valid glob"}},
		{name: "bad log format", env: map[string]string{"COLLECTOR_LOG_FORMAT": "xml"}, want: []string{"--log-format", "text, json"}},
	}
	if len(tests) < 20 {
		t.Fatalf("only %d cases; the issue asks for at least 20", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sub := func(s string) string { return strings.ReplaceAll(s, "{dir}", dir) }
			for name, body := range tt.files {
				writeFile(t, filepath.Join(dir, name), []byte(sub(body)))
			}
			store := filepath.Join(dir, "store")
			args := []string{"--outputs-path", filepath.Join(dir, "outputs"), "--state-dir", filepath.Join(dir, "state"), "--store", store}
			for i := 0; i < len(tt.args); i++ {
				if tt.args[i] == "--store" || tt.args[i] == "--connections" {
					// The case picks the store itself.
					args = args[:len(args)-2]
					break
				}
			}
			for _, a := range tt.args {
				args = append(args, sub(a))
			}
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = sub(v)
				if k == "POLYAXON_CONNECTIONS_CATALOG" || k == "POLYAXON_ARTIFACTS_STORE_NAME" {
					args = args[:4] // let the catalog pick the store
				}
				if k == "STORAGE_EMULATOR_HOST" {
					t.Setenv(k, v) // the GCS client reads it from the process
				}
			}
			code, out := runInProcess(t, env, args...)
			if code != 2 {
				t.Fatalf("exit code = %d, want 2; output:\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("message does not contain %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "panic") {
				t.Errorf("message shows a panic:\n%s", out)
			}
			assertEmpty(t, store)
			assertEmpty(t, filepath.Join(dir, "state"))
		})
	}
}

// TestBadStoreAtStartup checks the errors that only the store can tell: a
// missing bucket or container and refused credentials, on the real servers.
func TestBadStoreAtStartup(t *testing.T) {
	t.Run("s3 missing bucket", func(t *testing.T) {
		f := storetest.S3(t)
		endpoint := os.Getenv("COLLECTOR_TEST_S3_ENDPOINT")
		env := map[string]string{"AWS_ACCESS_KEY_ID": os.Getenv("COLLECTOR_TEST_S3_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY": os.Getenv("COLLECTOR_TEST_S3_SECRET_KEY")}
		_ = f
		code, out := runInProcess(t, env, "--outputs-path", t.TempDir(), "--state-dir", t.TempDir(),
			"--store", "s3://no-such-bucket-here?endpoint="+endpoint)
		if code != 2 || !strings.Contains(out, "does not exist") || !strings.Contains(out, "no-such-bucket-here") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
	})
	t.Run("s3 wrong credentials", func(t *testing.T) {
		f := storetest.S3(t)
		env := map[string]string{"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong-secret-value", "AWS_ENDPOINT_URL": os.Getenv("COLLECTOR_TEST_S3_ENDPOINT")}
		code, out := runInProcess(t, env, "--outputs-path", t.TempDir(), "--state-dir", t.TempDir(),
			"--store", f.Conn.Schema.Bucket)
		if code != 2 || !strings.Contains(out, "s3 s3://") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
		if strings.Contains(out, "wrong-secret-value") {
			t.Fatalf("the secret appears in the output:\n%s", out)
		}
	})
	t.Run("azure missing container", func(t *testing.T) {
		f := storetest.Azure(t)
		env := map[string]string{"AZURE_CONNECTION_STRING": f.Getenv("AZURE_CONNECTION_STRING")}
		code, out := runInProcess(t, env, "--outputs-path", t.TempDir(), "--state-dir", t.TempDir(),
			"--store", "wasbs://no-such-container@devstoreaccount1.blob.core.windows.net/")
		if code != 2 || !strings.Contains(out, "container does not exist") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
		if strings.Contains(out, storetest.AzuriteKey) {
			t.Fatalf("the account key appears in the output:\n%s", out)
		}
	})
	t.Run("gcs missing bucket", func(t *testing.T) {
		f := storetest.GCS(t)
		env := map[string]string{"STORAGE_EMULATOR_HOST": f.Getenv("STORAGE_EMULATOR_HOST")}
		code, out := runInProcess(t, env, "--outputs-path", t.TempDir(), "--state-dir", t.TempDir(),
			"--store", "gs://no-such-bucket-here/x")
		if code != 2 || !strings.Contains(out, "bucket does not exist") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		env := map[string]string{"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
		code, out := runInProcess(t, env, "--outputs-path", t.TempDir(), "--state-dir", t.TempDir(),
			"--store", "s3://bucket?endpoint=http://127.0.0.1:1")
		if code != 2 || !strings.Contains(out, "store s3 s3://bucket") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
	})
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("%s was written to: %v", dir, entries)
	}
}
