package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/mlsidecar/collector/internal/plugins"
	"github.com/mlsidecar/collector/stores"
)

// manifests are the objects of deploy/kubernetes/, by kind and name.
type manifests struct {
	jobs            map[string]*batchv1.Job
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	roles           map[string]*rbacv1.Role
	roleBindings    map[string]*rbacv1.RoleBinding
	claims          map[string]*corev1.PersistentVolumeClaim
}

// loadManifests decodes every YAML document of deploy/kubernetes/ strictly
// into its k8s.io/api type: an unknown or duplicated field is an error, as is
// a kind the tests do not know.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{
		jobs: map[string]*batchv1.Job{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, serviceAccounts: map[string]*corev1.ServiceAccount{},
		roles: map[string]*rbacv1.Role{}, roleBindings: map[string]*rbacv1.RoleBinding{},
		claims: map[string]*corev1.PersistentVolumeClaim{},
	}
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	separator := regexp.MustCompile(`(?m)^---\s*$`)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range separator.Split(string(data), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			where := filepath.Base(file) + " document " + strconv.Itoa(i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj interface{ GetName() string }
			switch tm.APIVersion + " " + tm.Kind {
			case "batch/v1 Job":
				obj = &batchv1.Job{}
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "v1 ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "rbac.authorization.k8s.io/v1 Role":
				obj = &rbacv1.Role{}
			case "rbac.authorization.k8s.io/v1 RoleBinding":
				obj = &rbacv1.RoleBinding{}
			case "v1 PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			default:
				t.Fatalf("%s: kind %q of %q: not one the tests check", where, tm.Kind, tm.APIVersion)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			name := obj.GetName()
			if name == "" {
				t.Fatalf("%s: no metadata.name", where)
			}
			switch o := obj.(type) {
			case *batchv1.Job:
				m.jobs[name] = o
			case *corev1.ConfigMap:
				m.configMaps[name] = o
			case *corev1.Secret:
				m.secrets[name] = o
			case *corev1.ServiceAccount:
				m.serviceAccounts[name] = o
			case *rbacv1.Role:
				m.roles[name] = o
			case *rbacv1.RoleBinding:
				m.roleBindings[name] = o
			case *corev1.PersistentVolumeClaim:
				m.claims[name] = o
			}
		}
	}
	return m
}

// volumeMount returns the container's mount at path and the pod's volume it
// mounts.
func volumeMount(pod corev1.PodSpec, c corev1.Container, path string) (corev1.VolumeMount, corev1.Volume, bool) {
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != path {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name {
				return vm, v, true
			}
		}
	}
	return corev1.VolumeMount{}, corev1.Volume{}, false
}

// mountedFile is a file the container reads: the key of a ConfigMap or
// Secret volume mounted over its folder. It writes the value to a temporary
// file for the collector's own loaders.
func (m manifests) mountedFile(t *testing.T, pod corev1.PodSpec, c corev1.Container, path string) string {
	t.Helper()
	vm, v, ok := volumeMount(pod, c, filepath.Dir(path))
	if !ok || v.ConfigMap == nil || vm.SubPath != "" {
		t.Fatalf("container %s: %s is not a key of a ConfigMap mounted at %s", c.Name, path, filepath.Dir(path))
	}
	cm, ok := m.configMaps[v.ConfigMap.Name]
	if !ok {
		t.Fatalf("container %s: ConfigMap %s is in no manifest", c.Name, v.ConfigMap.Name)
	}
	value, ok := cm.Data[filepath.Base(path)]
	if !ok {
		t.Fatalf("container %s: ConfigMap %s has no key %s (mounted as %s)", c.Name, cm.Name, filepath.Base(path), path)
	}
	file := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// envNames returns the names of a container's environment variables.
func envNames(c corev1.Container) []string {
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	return names
}

// fieldRef returns the downward-API field an environment variable holds.
func fieldRef(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			return e.ValueFrom.FieldRef.FieldPath
		}
	}
	return ""
}

// checkCollectorContainer checks what both forms share: the flags and
// variables exist, the run's name is the Job's, the downward-API variables,
// the outputs folder shared with the job's container, /dev/shm in memory in
// both, the plugins and connections files with the store's Secret mounted
// where the connections file says, the state on a volume, and no Docker
// socket.
func checkCollectorContainer(t *testing.T, m manifests, pod corev1.PodSpec, collector, job corev1.Container, inv invocation) {
	t.Helper()
	set := collectorSettings(t)
	checkCollectorArgs(t, "container "+collector.Name, inv)
	checkCollectorEnv(t, "container "+collector.Name, set, envNames(collector))

	wantFields := map[string]string{
		// job-name is on a Job's pods in every Kubernetes release;
		// batch.kubernetes.io/job-name is empty before 1.27.
		"COLLECTOR_RUN": "metadata.labels['job-name']",
		"POD_NAME":      "metadata.name",
		"POD_NAMESPACE": "metadata.namespace",
		"NODE_NAME":     "spec.nodeName",
	}
	for name, want := range wantFields {
		if got := fieldRef(collector, name); got != want {
			t.Errorf("container %s: %s from the downward API's %q; want %q", collector.Name, name, got, want)
		}
	}

	outputs, ok := inv.flag("outputs-path")
	if !ok {
		t.Fatalf("container %s: no --outputs-path", collector.Name)
	}
	_, v, ok := volumeMount(pod, collector, outputs)
	if !ok || v.EmptyDir == nil {
		t.Fatalf("container %s: --outputs-path=%s is not an emptyDir mount", collector.Name, outputs)
	}
	for _, vm := range collector.VolumeMounts {
		if vm.Name == v.Name && vm.MountPath != outputs {
			t.Errorf("container %s: the outputs volume %s is also mounted at %s: what is written there would be synced as outputs", collector.Name, v.Name, vm.MountPath)
		}
	}
	if collector.Name != job.Name {
		found := false
		for _, vm := range job.VolumeMounts {
			if vm.Name == v.Name && !vm.ReadOnly {
				found = true
				if got := envValueK8s(job, "OUTPUTS_PATH"); got != vm.MountPath {
					t.Errorf("container %s: OUTPUTS_PATH %q; the outputs volume is at %s", job.Name, got, vm.MountPath)
				}
			}
		}
		if !found {
			t.Errorf("container %s: does not mount the outputs volume %s (read-write) that the collector syncs", job.Name, v.Name)
		}
	}

	for _, c := range []corev1.Container{collector, job} {
		_, shm, ok := volumeMount(pod, c, "/dev/shm")
		if !ok || shm.EmptyDir == nil || shm.EmptyDir.Medium != corev1.StorageMediumMemory {
			t.Errorf("container %s: /dev/shm is not an in-memory emptyDir", c.Name)
		}
	}

	state, ok := inv.flag("state-dir")
	if !ok {
		t.Errorf("container %s: no --state-dir", collector.Name)
	} else if _, v, ok := volumeMount(pod, collector, state); !ok || v.EmptyDir == nil {
		t.Errorf("container %s: --state-dir=%s is not on an emptyDir", collector.Name, state)
	}

	pluginsPath, ok := inv.flag("plugins")
	if !ok {
		t.Fatalf("container %s: no --plugins", collector.Name)
	}
	pl, err := plugins.Load(m.mountedFile(t, pod, collector, pluginsPath))
	if err != nil {
		t.Fatalf("container %s: the plugins file: %v", collector.Name, err)
	}
	if pl.Docker != nil && *pl.Docker {
		t.Errorf("container %s: the docker plugin is on; a pod has no Docker socket to give it", collector.Name)
	}
	for _, vol := range pod.Volumes {
		if vol.HostPath != nil && strings.Contains(vol.HostPath.Path, "docker.sock") {
			t.Errorf("volume %s: mounts the Docker socket into a pod", vol.Name)
		}
	}

	connections, ok := inv.flag("connections")
	if !ok {
		t.Fatalf("container %s: no --connections", collector.Name)
	}
	cat, err := stores.LoadCatalog(m.mountedFile(t, pod, collector, connections))
	if err != nil {
		t.Fatalf("container %s: the connections file: %v", collector.Name, err)
	}
	store, err := stores.Resolve("", cat)
	if err != nil {
		t.Fatalf("container %s: the connections file's store: %v", collector.Name, err)
	}
	if store.Kind == stores.KindVolumeClaim || store.Kind == stores.KindHostPath {
		checkMountedStore(t, m, pod, collector, job, store, pl.MountArtifactsStoreOn())
	} else {
		checkStoreSecret(t, m, pod, collector, store)
	}

	grace := int64(30)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	if timeout := shutdownTimeout(t, set, inv); time.Duration(grace)*time.Second <= timeout {
		t.Errorf("terminationGracePeriodSeconds %d is not above the collector's --shutdown-timeout %v: the final sync would be cut", grace, timeout)
	}
}

// checkStoreSecret checks that the store's Secret is mounted where the
// connections file says, with the keys its kind needs.
func checkStoreSecret(t *testing.T, m manifests, pod corev1.PodSpec, collector corev1.Container, store stores.Connection) {
	t.Helper()
	if store.Secret == nil || store.Secret.MountPath == "" {
		t.Fatalf("container %s: the store %s has no secret.mountPath", collector.Name, store.Name)
	}
	_, sv, ok := volumeMount(pod, collector, store.Secret.MountPath)
	if !ok || sv.Secret == nil || sv.Secret.SecretName != store.Secret.Name {
		t.Fatalf("container %s: the store's secret %s is not mounted at its mountPath %s", collector.Name, store.Secret.Name, store.Secret.MountPath)
	}
	secret, ok := m.secrets[store.Secret.Name]
	if !ok {
		t.Fatalf("the store's Secret %s is in no manifest", store.Secret.Name)
	}
	for _, key := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if _, ok := secret.StringData[key]; !ok && store.Kind == stores.KindS3 {
			t.Errorf("Secret %s: no %s for the S3 store", secret.Name, key)
		}
	}
}

// checkMountedStore checks a host_path or volume_claim store: its volume is
// mounted read-write at the connection's mountPath, and, with the
// mountArtifactsStore plugin, at the same path in the job's container, the
// path the job is given.
func checkMountedStore(t *testing.T, m manifests, pod corev1.PodSpec, collector, job corev1.Container, store stores.Connection, mountForJob bool) {
	t.Helper()
	for _, c := range []corev1.Container{collector, job} {
		if c.Name != collector.Name && !mountForJob {
			continue
		}
		vm, v, ok := volumeMount(pod, c, store.Schema.MountPath)
		if !ok || vm.ReadOnly {
			t.Errorf("container %s: the store %s is not mounted read-write at its mountPath %s", c.Name, store.Name, store.Schema.MountPath)
			continue
		}
		switch store.Kind {
		case stores.KindVolumeClaim:
			if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != store.Schema.VolumeClaim {
				t.Errorf("container %s: %s is not the volume claim %q", c.Name, store.Schema.MountPath, store.Schema.VolumeClaim)
			} else if _, ok := m.claims[store.Schema.VolumeClaim]; !ok {
				t.Errorf("the volume claim %s is in no manifest", store.Schema.VolumeClaim)
			}
		case stores.KindHostPath:
			if v.HostPath == nil || (store.Schema.HostPath != "" && v.HostPath.Path != store.Schema.HostPath) {
				t.Errorf("container %s: %s is not the host path %q", c.Name, store.Schema.MountPath, store.Schema.HostPath)
			}
		}
	}
}

func envValueK8s(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestKubernetesSidecar checks the native-sidecar Job: the collector as an
// init container with restartPolicy Always, a startup probe on the /readyz
// that --probe-addr serves, a shared process namespace, and a service
// account whose Role lets the Kubernetes log source read the job's
// container.
func TestKubernetesSidecar(t *testing.T) {
	m := loadManifests(t)
	j, ok := m.jobs["train-sidecar"]
	if !ok {
		t.Fatalf("no Job train-sidecar; Jobs: %v", keys(m.jobs))
	}
	pod := j.Spec.Template.Spec
	var collector *corev1.Container
	for i, c := range pod.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			if collector != nil {
				t.Fatal("more than one sidecar init container")
			}
			collector = &pod.InitContainers[i]
		}
	}
	if collector == nil {
		t.Fatal("no init container with restartPolicy: Always (a native sidecar)")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d main containers; want the job's", len(pod.Containers))
	}
	job := pod.Containers[0]
	if len(collector.Command) > 0 {
		t.Errorf("collector: command %q replaces the image's entrypoint (tini, then the collector)", collector.Command)
	}
	inv := parseInvocation(t, collector.Args)
	if len(inv.command) > 0 {
		t.Errorf("collector: wraps %q; a sidecar wraps nothing", inv.command)
	}
	checkCollectorContainer(t, m, pod, *collector, job, inv)

	if pod.ShareProcessNamespace == nil || !*pod.ShareProcessNamespace {
		t.Error("shareProcessNamespace is not true: the collector would not see the job's processes")
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q: a Job's pod is Never or OnFailure", pod.RestartPolicy)
	}

	// The startup probe: /readyz on the port of --probe-addr.
	addr, ok := inv.flag("probe-addr")
	if !ok {
		t.Fatal("collector: no --probe-addr")
	}
	_, port, _ := strings.Cut(addr, ":")
	probe := collector.StartupProbe
	if probe == nil || probe.HTTPGet == nil {
		t.Fatal("collector: no HTTP startup probe")
	}
	if probe.HTTPGet.Path != "/readyz" {
		t.Errorf("collector: startup probe on %q; want /readyz (ready once the restore is done)", probe.HTTPGet.Path)
	}
	if got := probePort(t, *collector, probe.HTTPGet.Port.String()); got != port {
		t.Errorf("collector: startup probe on port %s; --probe-addr=%s listens on %s", got, addr, port)
	}
	if live := collector.LivenessProbe; live != nil && live.HTTPGet != nil {
		if live.HTTPGet.Path != "/healthz" || probePort(t, *collector, live.HTTPGet.Port.String()) != port {
			t.Errorf("collector: liveness probe on %s port %s; want /healthz on %s", live.HTTPGet.Path, live.HTTPGet.Port.String(), port)
		}
	}

	// The Kubernetes log source reads the job's container, with the pod's
	// service account allowed to.
	sources := inv.logSources("k8s")
	if !slices.Equal(sources, []string{job.Name}) {
		t.Errorf("collector: --logs k8s:%v; want the job's container %s", sources, job.Name)
	}
	checkLogRBAC(t, m, pod.ServiceAccountName)
}

// probePort resolves a probe's port (a number or a named port) to a number.
func probePort(t *testing.T, c corev1.Container, port string) string {
	t.Helper()
	if _, err := strconv.Atoi(port); err == nil {
		return port
	}
	for _, p := range c.Ports {
		if p.Name == port {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	t.Fatalf("container %s: no port named %q", c.Name, port)
	return ""
}

// checkLogRBAC checks that the service account exists and is bound to a Role
// that allows get on pods and on pods/log, what the Kubernetes log source
// needs.
func checkLogRBAC(t *testing.T, m manifests, account string) {
	t.Helper()
	if account == "" {
		t.Fatal("the pod has no serviceAccountName: the Kubernetes log source would run as the default account")
	}
	if _, ok := m.serviceAccounts[account]; !ok {
		t.Fatalf("ServiceAccount %s is in no manifest", account)
	}
	allowed := map[string]bool{}
	for _, rb := range m.roleBindings {
		bound := false
		for _, s := range rb.Subjects {
			bound = bound || (s.Kind == rbacv1.ServiceAccountKind && s.Name == account)
		}
		if !bound || rb.RoleRef.Kind != "Role" {
			continue
		}
		role, ok := m.roles[rb.RoleRef.Name]
		if !ok {
			t.Errorf("RoleBinding %s: Role %s is in no manifest", rb.Name, rb.RoleRef.Name)
			continue
		}
		for _, r := range role.Rules {
			if !slices.Contains(r.APIGroups, "") {
				continue
			}
			for _, res := range r.Resources {
				for _, verb := range r.Verbs {
					allowed[res+" "+verb] = true
				}
			}
		}
	}
	for _, need := range []string{"pods get", "pods/log get"} {
		if !allowed[need] {
			t.Errorf("ServiceAccount %s may not %s (verb after the resource); the Kubernetes log source needs it", account, need)
		}
	}
}

// TestKubernetesWrapper checks the two Jobs of the wrapper form (an S3
// store; a volume claim store with mountArtifactsStore): the job's
// container runs tini, then the collector, then the job's command after --,
// from binaries that an init container copied out of the collector's image.
func TestKubernetesWrapper(t *testing.T) {
	m := loadManifests(t)
	for _, name := range []string{"train-wrapper", "train-volume-claim"} {
		t.Run(name, func(t *testing.T) {
			j, ok := m.jobs[name]
			if !ok {
				t.Fatalf("no Job %s; Jobs: %v", name, keys(m.jobs))
			}
			checkWrapperJob(t, m, j.Spec.Template.Spec)
		})
	}
}

// checkWrapperJob checks a Job of the wrapper form.
func checkWrapperJob(t *testing.T, m manifests, pod corev1.PodSpec) {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers; want the job's alone", len(pod.Containers))
	}
	job := pod.Containers[0]
	if len(job.Command) != 3 || filepath.Base(job.Command[0]) != "tini-static" || job.Command[1] != "--" || filepath.Base(job.Command[2]) != "collector" {
		t.Fatalf("job: command %q; want [<dir>/tini-static -- <dir>/collector]", job.Command)
	}
	inv := parseInvocation(t, job.Args)
	if len(inv.command) == 0 {
		t.Fatal("job: no command after -- for the collector to wrap")
	}
	checkCollectorContainer(t, m, pod, job, job, inv)

	// The binaries come from the collector's image, copied by an init
	// container into the volume the job runs them from.
	img := readImage(t)
	dir := filepath.Dir(job.Command[2])
	_, bin, ok := volumeMount(pod, job, dir)
	if !ok || bin.EmptyDir == nil {
		t.Fatalf("job: %s is not an emptyDir", dir)
	}
	copied := false
	for _, c := range pod.InitContainers {
		_, v, ok := volumeMount(pod, c, dir)
		if !ok || v.Name != bin.Name {
			continue
		}
		want := []string{"cp", img.binary, filepath.Join(filepath.Dir(img.entrypoint[0]), "tini-static"), dir + "/"}
		if !slices.Equal(c.Command, want) {
			t.Errorf("init container %s: command %q; want %q", c.Name, c.Command, want)
		}
		copied = true
	}
	if !copied {
		t.Errorf("no init container fills %s with the collector and tini", dir)
	}
	if len(inv.logSources("k8s")) > 0 {
		t.Error("job: the wrapper reads the command's output itself; --logs k8s: is not needed")
	}
}

// TestKubernetesRestrictedPodSecurity checks every Job's pod template
// against the "restricted" Pod Security Standard at its latest version, with
// the evaluator the API server's admission plugin runs: a namespace labelled
// pod-security.kubernetes.io/enforce=restricted refuses a pod that fails a
// check, and the Job then never starts one.
func TestKubernetesRestrictedPodSecurity(t *testing.T) {
	m := loadManifests(t)
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	level := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	if len(m.jobs) == 0 {
		t.Fatal("no Job in deploy/kubernetes")
	}
	violations := 0
	for _, name := range keys(m.jobs) {
		tmpl := m.jobs[name].Spec.Template
		for _, r := range evaluator.EvaluatePod(level, &tmpl.ObjectMeta, &tmpl.Spec) {
			if !r.Allowed {
				violations++
				t.Errorf("Job %s: restricted Pod Security Standard (%s): %s: %s", name, level.Version, r.ForbiddenReason, r.ForbiddenDetail)
			}
		}
	}
	if violations > 0 {
		t.Errorf("%d violations of the restricted Pod Security Standard", violations)
	}
}
