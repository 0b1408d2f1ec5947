package deploy

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mlsidecar/collector/internal/plugins"
	"github.com/mlsidecar/collector/stores"
)

const dockerSocket = "/var/run/docker.sock"

// loadCompose loads docker-compose.yml with the compose-spec loader, which
// validates it against the compose schema (unknown keys are errors), with an
// empty environment so that every ${VAR:-default} takes its default.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	return loadComposeEnv(t, types.Mapping{})
}

// loadComposeEnv loads docker-compose.yml with env as the environment.
func loadComposeEnv(t *testing.T, env types.Mapping) *types.Project {
	t.Helper()
	root := repoRoot(t)
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}
	project, err := loader.LoadWithContext(context.Background(), details)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return project
}

// collectorService finds the service built from this repository's Dockerfile.
func collectorService(t *testing.T, p *types.Project) types.ServiceConfig {
	t.Helper()
	var found []types.ServiceConfig
	for _, s := range p.Services {
		if s.Build != nil && s.Build.Context == repoRoot(t) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("docker-compose.yml: %d services are built from the repository's Dockerfile; want 1, the collector", len(found))
	}
	return found[0]
}

// mountAt returns the service's mount at target.
func mountAt(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// envValue returns a service's environment variable.
func envValue(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

func TestComposeCollector(t *testing.T) {
	p := loadCompose(t)
	c := collectorService(t, p)
	set := collectorSettings(t)
	img := readImage(t)

	if len(c.Entrypoint) > 0 {
		t.Errorf("collector: entrypoint %q replaces the image's %q (tini, then the collector)", c.Entrypoint, img.entrypoint)
	}
	if c.Build.Dockerfile != "" && c.Build.Dockerfile != "Dockerfile" {
		t.Errorf("collector: built from %q; want the repository's Dockerfile", c.Build.Dockerfile)
	}
	for name := range c.Build.Args {
		if !strings.Contains(string(repoFile(t, "Dockerfile")), "ARG "+name) {
			t.Errorf("collector: build argument %s is not an ARG of the Dockerfile", name)
		}
	}
	inv := parseInvocation(t, c.Command)
	checkCollectorArgs(t, "compose collector", inv)
	checkCollectorEnv(t, "compose collector", set, keys(c.Environment))

	// The plugins file the collector reads is this repository's, mounted.
	pluginsPath, ok := inv.flag("plugins")
	if !ok {
		t.Fatal("collector: no --plugins")
	}
	m, ok := mountAt(c, pluginsPath)
	if !ok || m.Type != types.VolumeTypeBind {
		t.Fatalf("collector: --plugins=%s is not a file mounted from the repository", pluginsPath)
	}
	pl, err := plugins.Load(m.Source)
	if err != nil {
		t.Fatalf("collector: the plugins file: %v", err)
	}

	// The Docker socket is mounted only with the docker plugin on, and the
	// Docker log source is used only then.
	docker := pl.Docker != nil && *pl.Docker
	for _, s := range p.Services {
		_, mounted := mountAt(s, dockerSocket)
		switch {
		case mounted && s.Name != c.Name:
			t.Errorf("service %s mounts the Docker socket; only the collector may", s.Name)
		case mounted && !docker:
			t.Errorf("collector: mounts the Docker socket with the docker plugin off")
		case !mounted && s.Name == c.Name && docker:
			t.Errorf("collector: the docker plugin is on but the Docker socket is not mounted at %s", dockerSocket)
		}
	}
	if len(inv.logSources("docker")) > 0 && !docker {
		t.Errorf("collector: --logs docker:... needs the docker plugin on")
	}
	if _, ok := inv.flag("resources-container"); ok && !docker {
		t.Errorf("collector: --resources-container needs the docker plugin on")
	}
	if strings.HasPrefix(c.User, "0") || c.User == "root" {
		if !docker {
			t.Errorf("collector: runs as root (user %q) without the Docker socket; the image's user will do", c.User)
		}
	}

	// The store is the compose file's S3 server, with the bucket that the
	// one-shot service creates, before the collector starts.
	store, _ := inv.flag("store")
	if _, err := stores.Resolve(store); err != nil {
		t.Errorf("collector: the collector refuses --store: %v", err)
	}
	u, err := url.Parse(store)
	if err != nil || u.Scheme != "s3" {
		t.Fatalf("collector: --store=%q; want an s3:// URL of the demo's server", store)
	}
	endpoint, err := url.Parse(u.Query().Get("endpoint"))
	if err != nil || endpoint.Host == "" {
		t.Fatalf("collector: --store=%q has no endpoint", store)
	}
	server, ok := p.Services[endpoint.Hostname()]
	if !ok {
		t.Fatalf("collector: the store's endpoint %s is not a service of the compose file", endpoint.Host)
	}
	if endpoint.Port() != "9000" || !strings.Contains(server.Image, "minio") {
		t.Errorf("collector: the store's endpoint %s: want MinIO's S3 port 9000 on service %s (image %s)", endpoint.Host, server.Name, server.Image)
	}
	if got, want := envValue(c, "AWS_ACCESS_KEY_ID"), envValue(server, "MINIO_ROOT_USER"); got == "" || got != want {
		t.Errorf("collector: AWS_ACCESS_KEY_ID %q; want the server's MINIO_ROOT_USER %q", got, want)
	}
	if got, want := envValue(c, "AWS_SECRET_ACCESS_KEY"), envValue(server, "MINIO_ROOT_PASSWORD"); got == "" || got != want {
		t.Error("collector: AWS_SECRET_ACCESS_KEY is not the server's MINIO_ROOT_PASSWORD")
	}
	madeBy := ""
	for name, dep := range c.DependsOn {
		s := p.Services[name]
		cmd := strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), " ")
		if dep.Condition == types.ServiceConditionCompletedSuccessfully && strings.Contains(cmd, "mb") && strings.HasSuffix(cmd, "/"+u.Host) {
			madeBy = name
			if s.DependsOn[server.Name].Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: creates the bucket without waiting for %s to be healthy", name, server.Name)
			}
		}
	}
	if madeBy == "" {
		t.Errorf("collector: does not wait (service_completed_successfully) for a one-shot `mc mb .../%s`", u.Host)
	}

	if _, ok := inv.flag("run"); !ok {
		t.Error("collector: no --run; a restarted demo would start a new run instead of resuming")
	}
	if c.StopGracePeriod == nil || time.Duration(*c.StopGracePeriod) <= shutdownTimeout(t, set, inv) {
		t.Errorf("collector: stop_grace_period %v; want more than the collector's --shutdown-timeout %v, so `docker compose down` gets the final sync", c.StopGracePeriod, shutdownTimeout(t, set, inv))
	}
}

// shutdownTimeout is the collector's --shutdown-timeout: given, else the default.
func shutdownTimeout(t *testing.T, set settings, inv invocation) time.Duration {
	t.Helper()
	v, ok := inv.flag("shutdown-timeout")
	if !ok {
		v = set.defaults["shutdown-timeout"]
	}
	d, err := time.ParseDuration(v + "s")
	if err != nil {
		t.Fatalf("--shutdown-timeout %q: %v", v, err)
	}
	return d
}

// TestComposeJob checks the job beside the collector: the outputs volume at
// --outputs-path in both, the job's logs and Docker stats asked for by the
// job's compose service (no container_name: it would be global to the
// host, so that a second project, or a second checkout, could not start),
// the job started only once the collector is ready
// (restored), the exit-code handshake that ends the collector after the job,
// and the job's /dev/shm that of the collector's IPC namespace.
func TestComposeJob(t *testing.T) {
	p := loadCompose(t)
	c := collectorService(t, p)
	inv := parseInvocation(t, c.Command)

	names := inv.logSources("docker")
	if len(names) != 1 {
		t.Fatalf("collector: --logs docker:NAME given %d times; want the job's container once", len(names))
	}
	for _, s := range p.Services {
		if s.ContainerName != "" {
			t.Errorf("service %s: container_name %q is global to the host; the collector finds the job by its service", s.Name, s.ContainerName)
		}
	}
	job, ok := p.Services[names[0]]
	if !ok {
		t.Fatalf("collector: --logs docker:%s names no service", names[0])
	}
	if stats, _ := inv.flag("resources-container"); stats != job.Name {
		t.Errorf("collector: --resources-container=%q; want the job's service %q, whose Docker stats are the job's resources", stats, job.Name)
	}

	outputs, _ := inv.flag("outputs-path")
	if outputs == "" {
		t.Fatal("collector: no --outputs-path")
	}
	cm, ok := mountAt(c, outputs)
	if !ok || cm.Type != types.VolumeTypeVolume {
		t.Fatalf("collector: --outputs-path=%s is not a named volume", outputs)
	}
	// One outputs volume per run: another RUN starts with an empty outputs
	// folder, the same RUN finds its own again.
	outputsVolume := func(run string) string {
		env := types.Mapping{}
		if run != "" {
			env["RUN"] = run
		}
		return loadComposeEnv(t, env).Volumes[cm.Source].Name
	}
	if a, b, again := outputsVolume("a"), outputsVolume("b"), outputsVolume("a"); a == b || a != again || !strings.Contains(a, "a") {
		t.Errorf("the outputs volume of RUN=a is %q, of RUN=b %q, of RUN=a again %q; want one volume per run", a, b, again)
	}
	if v := outputsVolume(""); !strings.HasPrefix(v, p.Name+"-") {
		t.Errorf("the outputs volume %q does not start with the project's name %q: two projects would share it", v, p.Name)
	}
	jobOutputs := envValue(job, "OUTPUTS_PATH")
	jm, ok := mountAt(job, jobOutputs)
	if !ok || jm.Source != cm.Source {
		t.Errorf("job: OUTPUTS_PATH %q is not the volume %q that the collector syncs", jobOutputs, cm.Source)
	}
	if jm.ReadOnly {
		t.Error("job: the outputs volume is read-only")
	}
	if cm.ReadOnly {
		t.Error("collector: the outputs volume is read-only; a resumed run's outputs are restored into it")
	}
	script, ok := mountAt(job, "/job.sh")
	if !ok || !slices.Equal(job.Command, []string{"sh", "/job.sh"}) {
		t.Fatalf("job: want command [sh /job.sh] with the script mounted; got %q", job.Command)
	}
	if filepath.Dir(script.Source) != filepath.Join(repoRoot(t), "deploy", "compose") {
		t.Errorf("job: the script %s is not deploy/compose's", script.Source)
	}

	// The job starts once the collector is ready: its healthcheck tests the
	// file the collector writes when the restore is done.
	if job.DependsOn[c.Name].Condition != types.ServiceConditionHealthy {
		t.Errorf("job: depends_on %s: %q; want service_healthy (started after the restore)", c.Name, job.DependsOn[c.Name].Condition)
	}
	ready, _ := inv.flag("ready-file")
	if c.HealthCheck == nil || !slices.Equal(c.HealthCheck.Test, []string{"CMD", "test", "-f", ready}) || ready == "" {
		t.Errorf("collector: healthcheck %v; want [CMD test -f <--ready-file>] (--ready-file=%q)", c.HealthCheck, ready)
	}

	// The collector wraps a wait for the job's exit code, in a file of a
	// volume that both mount.
	status := envValue(job, "JOB_STATUS")
	if status == "" {
		t.Fatal("job: no JOB_STATUS")
	}
	wait := strings.Join(inv.command, " ")
	if !strings.Contains(wait, "until [ -f "+status+" ]") || !strings.Contains(wait, `exit "$(cat `+status+`)"`) {
		t.Errorf("collector: the wrapped command %q does not wait for %s and exit with its code", wait, status)
	}
	cs, ok1 := mountAt(c, filepath.Dir(status))
	js, ok2 := mountAt(job, filepath.Dir(status))
	if !ok1 || !ok2 || cs.Source != js.Source || cs.Type != types.VolumeTypeVolume {
		t.Errorf("the job's exit code %s is not on a volume that the collector and the job share", status)
	}

	// /dev/shm: the job's is the collector's, with the size compose gives it.
	if job.Ipc != "service:"+c.Name || c.Ipc != "shareable" || c.ShmSize < 64<<20 {
		t.Errorf("shm: job ipc %q, collector ipc %q, shm_size %d; want the job in the collector's shareable IPC namespace, with shm_size above Docker's 64 MiB", job.Ipc, c.Ipc, c.ShmSize)
	}
}
