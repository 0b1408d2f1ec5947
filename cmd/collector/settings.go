package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mlsidecar/collector/internal/plugins"
	"github.com/mlsidecar/collector/internal/spelling"
	"github.com/mlsidecar/collector/logs"
	"github.com/mlsidecar/collector/sync"
)

// settings is the collector's whole configuration after merging, in order of
// precedence, flags, COLLECTOR_* environment variables, the config file, the
// plugins file, and the defaults.
type settings struct {
	ConfigFile  string
	OutputsPath string
	Store       string
	Connections string
	PluginsFile string
	Run         string
	// Replica names this collector's replica in a distributed run (N
	// collectors, one run); "" is a single-replica run. replicaFrom is
	// the platform's variable it was taken from, when not given.
	Replica     string
	replicaFrom string
	// Restore is what a replica gets back at start: "own" (the files it
	// uploaded) or "all" (the run's outputs).
	Restore    string
	StateDir   string
	LogLevel   string
	LogFormat  string
	AutoResume bool
	ProbeAddr  string
	ReadyFile  string
	Sync       sync.Config
	Logs       logs.Config
	Preemption preemption
	// ResourcesInterval is the time between resource samples; <= 0 is off.
	ResourcesInterval time.Duration
	// ResourcesContainer is a container whose Docker stats are sampled.
	ResourcesContainer string
	// ResourcesPIDs and ResourcesCgroup name the job's processes and cgroup
	// (see resources.Config.PIDs and CgroupPath).
	ResourcesPIDs   []int
	ResourcesCgroup string

	// Report writes <run>/report.html at the end of each attempt.
	Report bool

	// The tracking API the run's status is reported to (none when both
	// URLs are empty), and its token: from APITokenFile, else
	// COLLECTOR_API_TOKEN.
	APIURL         string
	APIExternalURL string
	APITokenFile   string
	APIHeartbeat   time.Duration

	Plugins *plugins.Plugins
	Command []string // wrapper mode: the command after --
	// runGenerated is true when no run ID was given and one was made up.
	runGenerated bool
}

func defaultSettings() *settings {
	return &settings{
		OutputsPath: "./outputs",
		StateDir:    ".collector",
		Restore:     "own",
		LogLevel:    "info",
		LogFormat:   "text",
		AutoResume:  true,
		Sync:        sync.DefaultConfig(),
		Logs:        logs.DefaultConfig(),
		Report:      true,
		Preemption:  defaultPreemption(),

		ResourcesInterval: 10 * time.Second,
		APIHeartbeat:      30 * time.Second,
	}
}

// envName is the environment variable for a flag: --sync-interval is
// COLLECTOR_SYNC_INTERVAL.
func envName(flagName string) string {
	return "COLLECTOR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (s *settings) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&s.ConfigFile, "config", s.ConfigFile, "YAML or JSON file of settings, keyed by flag name")
	fs.StringVar(&s.OutputsPath, "outputs-path", s.OutputsPath, "the folder the job writes its outputs to")
	fs.StringVar(&s.Store, "store", s.Store, "the artifacts store: a path, a file://, s3://, gs://, azblob:// or wasbs:// URL, or a connection name (default: the connections' artifactsStore, else ./artifacts)")
	fs.StringVar(&s.Connections, "connections", s.Connections, "Polyaxon-style connections file (artifactsStore: and connections:)")
	fs.StringVar(&s.PluginsFile, "plugins", s.PluginsFile, "Polyaxon-style plugins file (plugins:)")
	fs.StringVar(&s.Run, "run", s.Run, "the run's name in the store (default: in a Kubernetes pod with autoResume, the pod's Job's name; else a new UUID)")
	fs.StringVar(&s.Replica, "replica", s.Replica, "this replica's name in a distributed run (N collectors, one run): its state, attempts, logs and resources are its own in the store (default: from the platform's environment: TF_CONFIG, RANK, JOB_COMPLETION_INDEX; else none, a single-replica run)")
	fs.StringVar(&s.Restore, "restore", s.Restore, "what a replica gets back at start with autoResume: own (the outputs it uploaded) or all (the run's outputs)")
	fs.StringVar(&s.StateDir, "state-dir", s.StateDir, "folder for the collector's local state")
	fs.StringVar(&s.LogLevel, "log-level", s.LogLevel, "debug, info, warn or error")
	fs.StringVar(&s.LogFormat, "log-format", s.LogFormat, "text or json")
	fs.BoolVar(&s.AutoResume, "auto-resume", s.AutoResume, "restore the run's outputs from the store at start (Polyaxon's autoResume)")
	fs.StringVar(&s.ProbeAddr, "probe-addr", s.ProbeAddr, "serve /readyz and /healthz on this address (e.g. :8080); ready once the restore is done")
	fs.StringVar(&s.ReadyFile, "ready-file", s.ReadyFile, "write this file once the restore is done (for an exec startup probe)")
	fs.StringVar(&s.APIURL, "api-url", s.APIURL, "tracking API: URL (in-cluster) the run's status is POSTed to as JSON (started, heartbeats, the end)")
	fs.StringVar(&s.APIExternalURL, "api-external-url", s.APIExternalURL, "tracking API: external URL, used instead of --api-url with the externalHost plugin")
	fs.StringVar(&s.APITokenFile, "api-token-file", s.APITokenFile, "tracking API: file holding the bearer token (else COLLECTOR_API_TOKEN); sent, and given to the command, with the auth plugin on")
	fs.Var((*sync.Seconds)(&s.APIHeartbeat), "api-heartbeat", "tracking API: seconds between heartbeats while the run goes on")
	s.Sync.RegisterFlags(fs)
	s.Logs.RegisterFlags(fs)
	fs.BoolVar(&s.Report, "report", s.Report, "write the run's report, one HTML page (collector report), to <run>/report.html at the end of each attempt")
	s.Preemption.registerFlags(fs)
	fs.Var((*sync.Seconds)(&s.ResourcesInterval), "resources-interval", "seconds between samples of the job's CPU, memory, GPU and shared memory; <= 0 turns sampling off")
	fs.StringVar(&s.ResourcesContainer, "resources-container", s.ResourcesContainer, "a container whose Docker stats are sampled too (compose: the job's container); needs the docker plugin")
	fs.Var((*pidList)(&s.ResourcesPIDs), "resources-pid", "a process of the job, sampled with its descendants instead of what the mode implies (repeatable, or comma-separated)")
	fs.StringVar(&s.ResourcesCgroup, "resources-cgroup", s.ResourcesCgroup, "the job's cgroup, as /proc/PID/cgroup names it or its folder under /sys/fs/cgroup: its figures and processes are sampled")
	return fs
}

// usage writes the flags and their environment variables to w.
func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  collector [flags] [-- COMMAND [ARGS...]]   sync the outputs folder beside a job, or around COMMAND
  collector restore [flags]                  bring a run's outputs (and the collector's state) back
  collector logs --store S --run R [--container C] [--stream stdout|stderr] [--follow] [--json]
                                             print a run's logs from the store, in order
  collector report --store S --run R [-o report.html|-]
                                             one self-contained HTML page for a run
  collector version

Each flag is also an environment variable COLLECTOR_<NAME> and a key of the
--config file; flags win over the environment, the environment over the file.

Flags:
`)
	fs := defaultSettings().flagSet()
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def != "" {
			def = " (default " + def + ")"
		}
		fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
	})
}

// afterDashes reports whether the last n of args follow a "--": a word
// without it is a mistyped subcommand ("collector restor"), which must not
// start a run that writes to the store.
func afterDashes(args []string, n int) bool {
	i := len(args) - n - 1
	return i >= 0 && args[i] == "--"
}

// envNotSettings are the COLLECTOR_ variables that are not a flag's: those
// the collector gives the wrapped command (a collector run inside it sees
// them) and those its log sources and plugins read.
var envNotSettings = []string{
	"COLLECTOR_ATTEMPT", "COLLECTOR_RESUMED", "COLLECTOR_ARTIFACTS_STORE_PATH", "COLLECTOR_RUN_ARTIFACTS_PATH",
	"COLLECTOR_API_URL", "COLLECTOR_AUTH_TOKEN", "COLLECTOR_API_TOKEN",
	"COLLECTOR_POD_NAME", "COLLECTOR_POD_NAMESPACE", "COLLECTOR_NODE_NAME", "COLLECTOR_SERVICEACCOUNT_DIR",
	"COLLECTOR_AZURE_METADATA_ENDPOINT",
	"COLLECTOR_VERSION", // docker-compose.yml's build argument, from the shell that runs compose
}

// serviceLink matches the variables Kubernetes gives every pod for a Service
// named collector or collector-something (COLLECTOR_SERVICE_HOST,
// COLLECTOR_PORT_8080_TCP_ADDR, ...), and the test suite's own.
var serviceLink = regexp.MustCompile(`^COLLECTOR_([A-Z0-9_]+_)?(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$|^COLLECTOR_TEST_`)

// checkEnvNames refuses a COLLECTOR_ variable that names no setting: a
// misspelt one (COLLECTOR_OUTPUT_PATH) would be ignored, and the job's
// outputs looked for in the default folder, never stored.
func checkEnvNames(environ []string, fs *flag.FlagSet) error {
	known := map[string]bool{}
	for _, n := range envNotSettings {
		known[n] = true
	}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "COLLECTOR_") && !known[name] && !serviceLink.MatchString(name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	var flagNames []string
	fs.VisitAll(func(f *flag.Flag) { flagNames = append(flagNames, envName(f.Name)) })
	hint := ""
	if near := closest(unknown[0], flagNames); spelling.Distance(near, unknown[0]) <= 3 {
		hint = "; did you mean " + near + "?"
	}
	return fmt.Errorf("%s: not a setting%s (each flag --NAME is the environment variable COLLECTOR_NAME; see collector help)", unknown[0], hint)
}

// closest returns the one of names with the fewest single-letter edits
// from name.
func closest(name string, names []string) string {
	best, bestDist := "", -1
	for _, n := range names {
		if d := spelling.Distance(name, n); bestDist < 0 || d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

var runPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// loadSettings merges the sources of configuration and validates the result.
// Every error it returns is a bad setting (exit code 2) and names the setting.
func loadSettings(args []string, getenv func(string) string) (*settings, error) {
	s := defaultSettings()
	fs := s.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%v (see collector --help)", err)
	}
	s.Command = fs.Args()
	if len(s.Command) > 0 && !afterDashes(args, len(s.Command)) {
		return nil, fmt.Errorf("unknown command %q: the commands are restore, logs, report, version and help; "+
			"to wrap a command, put it after --: collector [flags] -- %s", s.Command[0], strings.Join(s.Command, " "))
	}
	if ownProcess { // tests running in-process give their environment as a map
		if err := checkEnvNames(os.Environ(), fs); err != nil {
			return nil, err
		}
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	if s.ConfigFile == "" {
		s.ConfigFile = getenv(envName("config"))
	}
	fileValues, err := readConfigFile(s.ConfigFile, fs)
	if err != nil {
		return nil, err
	}
	fromFileOrEnv := map[string]bool{}
	var setErr error
	fs.VisitAll(func(f *flag.Flag) {
		if setErr != nil || explicit[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := lookupEnv(getenv, envName(f.Name)); ok {
			fromFileOrEnv[f.Name] = true
			if err := f.Value.Set(v); err != nil {
				setErr = fmt.Errorf("%s: %v", envName(f.Name), err)
			}
			return
		}
		if v, ok := fileValues[f.Name]; ok {
			fromFileOrEnv[f.Name] = true
			if err := f.Value.Set(v); err != nil {
				setErr = fmt.Errorf("config file %s: %s: %v", s.ConfigFile, f.Name, err)
			}
		}
	})
	if setErr != nil {
		return nil, setErr
	}
	// Flags given on the command line were set by Parse and are not touched
	// above, so they win.

	if s.PluginsFile != "" {
		if s.Plugins, err = plugins.Load(s.PluginsFile); err != nil {
			return nil, err
		}
		given := func(name string) bool { return explicit[name] || fromFileOrEnv[name] }
		if secs, ok := s.Plugins.SyncIntervalSeconds(); ok && !given("sync-interval") {
			s.Sync.Interval = time.Duration(secs * float64(time.Second))
		}
		if s.Plugins.AutoResume != nil && !given("auto-resume") {
			s.AutoResume = *s.Plugins.AutoResume
		}
		if s.Plugins.LogLevel != "" && !given("log-level") {
			s.LogLevel = plugins.LogLevels[strings.ToLower(s.Plugins.LogLevel)]
		}
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := s.runFromPod(getenv); err != nil {
		return nil, err
	}
	if s.Replica == "" {
		s.Replica, s.replicaFrom = replicaFromPlatform(getenv)
		if !replicaPattern.MatchString(s.Replica) && s.Replica != "" {
			return nil, fmt.Errorf("--replica: %s gives %q, not a valid replica name; set --replica (COLLECTOR_REPLICA) to 1 to 63 letters, digits, '.', '_' or '-'", s.replicaFrom, s.Replica)
		}
	}
	s.runGenerated = s.Run == ""
	return s, nil
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// readConfigFile reads a flat YAML/JSON map of flag names to values.
func readConfigFile(path string, fs *flag.FlagSet) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: cannot read %q: %v", path, errors.Unwrap(err))
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("--config %s: not a YAML or JSON map of settings: %v", path, err)
	}
	values := map[string]string{}
	for k, v := range raw {
		if fs.Lookup(k) == nil || k == "config" {
			var valid []string
			fs.VisitAll(func(f *flag.Flag) {
				if f.Name != "config" {
					valid = append(valid, f.Name)
				}
			})
			sort.Strings(valid)
			return nil, fmt.Errorf("--config %s: unknown key %q; valid keys: %s", path, k, strings.Join(valid, ", "))
		}
		switch v := v.(type) {
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			values[k] = strings.Join(parts, ",")
		case nil:
			values[k] = ""
		case float64:
			values[k] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			values[k] = fmt.Sprint(v)
		}
	}
	return values, nil
}

func (s *settings) validate() error {
	if s.OutputsPath == "" {
		return errors.New("--outputs-path: is empty; want the folder the job writes its outputs to")
	}
	if fi, err := os.Stat(s.OutputsPath); err == nil && !fi.IsDir() {
		return fmt.Errorf("--outputs-path: %q is a file; want a folder", s.OutputsPath)
	}
	if s.Run != "" && !runPattern.MatchString(s.Run) {
		return fmt.Errorf("--run: %q is not a valid run name; use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Run)
	}
	if err := validateReplica(s.Replica); err != nil {
		return err
	}
	if s.Restore != "own" && s.Restore != "all" {
		return fmt.Errorf("--restore: %q is not a choice; valid: own (the files this replica uploaded), all (the run's outputs)", s.Restore)
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		return err
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		return fmt.Errorf("--log-format: %q is not a format; valid: text, json", s.LogFormat)
	}
	if s.StateDir == "" {
		return errors.New("--state-dir: is empty; want a folder for the collector's state")
	}
	for name, u := range map[string]string{"--api-url": s.APIURL, "--api-external-url": s.APIExternalURL} {
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("%s: %q is not an http:// or https:// URL", name, u)
		}
	}
	if s.APIHeartbeat < time.Second {
		return fmt.Errorf("--api-heartbeat: %v is below 1; want seconds >= 1", s.APIHeartbeat.Seconds())
	}
	if s.ResourcesInterval > 0 && s.ResourcesInterval < minResourcesInterval {
		return fmt.Errorf("--resources-interval: %v is below %v; want %v seconds or more, or 0 to turn sampling off",
			s.ResourcesInterval.Seconds(), minResourcesInterval.Seconds(), minResourcesInterval.Seconds())
	}
	if c := s.ResourcesContainer; c != "" {
		if !containerName.MatchString(c) {
			return fmt.Errorf("--resources-container: %q is not a container's name or ID; want letters, digits, '_', '.' and '-', starting with a letter or digit", c)
		}
		if !s.Plugins.DockerOn() {
			return fmt.Errorf("--resources-container: %q needs the docker plugin (plugins: docker: true in --plugins)", c)
		}
	}
	if err := validateResourcesCgroup(s.ResourcesCgroup); err != nil {
		return err
	}
	if s.Logs.ChunkAge == 0 && s.Sync.Interval > 0 {
		s.Logs.ChunkAge = s.Sync.Interval
	}
	if err := s.Logs.Validate(); err != nil {
		return err
	}
	if err := s.Preemption.validate(); err != nil {
		return err
	}
	return s.Sync.Validate()
}

// minResourcesInterval is the shortest time between resource samples.
const minResourcesInterval = 100 * time.Millisecond

// containerName is what Docker accepts as a container's name or ID.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func parseLevel(name string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(name)); err != nil {
		return 0, fmt.Errorf("--log-level: %q is not a level; valid: debug, info, warn, error", name)
	}
	return l, nil
}
