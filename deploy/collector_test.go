package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
)

// testVersion is the version the tests build the collector with.
const testVersion = "deploy-test-1.2.3"

// repoRoot is the repository's root: the folder above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source file")
	}
	return filepath.Dir(filepath.Dir(file))
}

// repoFile reads a file of the repository.
func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var (
	buildOnce stdsync.Once
	binPath   string
	buildErr  error
)

// collectorBinary builds the collector once, with `make build` as a user
// does (the Makefile's tags and ldflags, VERSION=testVersion), and returns
// its path.
func collectorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "collector-deploy-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "collector")
		cmd := exec.Command("make", "-s", "build", "BIN="+binPath, "VERSION="+testVersion)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// settings are the collector's flags and their environment variables, as its
// --help lists them.
type settings struct {
	env      map[string]string // COLLECTOR_X -> flag name
	defaults map[string]string // flag name -> default, where one is printed
}

var helpLine = regexp.MustCompile(`^  --([a-z0-9-]+)  \[(COLLECTOR_[A-Z0-9_]+)\]$`)
var defaultSuffix = regexp.MustCompile(`\(default ([^()]*)\)$`)

// collectorSettings reads the built binary's --help.
func collectorSettings(t *testing.T) settings {
	t.Helper()
	out, err := exec.Command(collectorBinary(t), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("collector --help: %v\n%s", err, out)
	}
	s := settings{env: map[string]string{}, defaults: map[string]string{}}
	lines := strings.Split(string(out), "\n")
	for i, line := range lines {
		m := helpLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s.env[m[2]] = m[1]
		if i+1 < len(lines) {
			if d := defaultSuffix.FindStringSubmatch(lines[i+1]); d != nil {
				s.defaults[m[1]] = d[1]
			}
		}
	}
	if len(s.env) < 5 {
		t.Fatalf("collector --help lists %d flags in the form \"  --name  [COLLECTOR_NAME]\"; has its format changed?\n%s", len(s.env), out)
	}
	return s
}

// invocation is a collector command line: its flags, and the command after
// `--` in wrapper mode.
type invocation struct {
	args    []string            // the flags, as given
	flags   map[string][]string // flag name -> values, in order
	command []string            // after --, empty in sidecar mode
}

// parseInvocation splits a collector's arguments. The files give every flag
// as --name=value (bool flags as --name or --name=true), so that the flag's
// value is never ambiguous to a reader; the test holds them to that.
func parseInvocation(t *testing.T, args []string) invocation {
	t.Helper()
	inv := invocation{flags: map[string][]string{}}
	for i, a := range args {
		if a == "--" {
			inv.command = args[i+1:]
			break
		}
		inv.args = append(inv.args, a)
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || (!ok && !slices.Contains(boolFlags, name)) {
			t.Errorf("collector argument %q: want --name=value", a)
			continue
		}
		inv.flags[name] = append(inv.flags[name], value)
	}
	return inv
}

// boolFlags may stand alone.
var boolFlags = []string{"auto-resume", "keep-deleted"}

// flag returns the last value of a flag, as the flag package keeps it.
func (inv invocation) flag(name string) (string, bool) {
	v := inv.flags[name]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// checkCollectorArgs parses the flags with the binary's own parser: every
// flag must exist and take its value (the binary exits 0 on --help only when
// every flag before it parsed).
func checkCollectorArgs(t *testing.T, where string, inv invocation) {
	t.Helper()
	cmd := exec.Command(collectorBinary(t), append(slices.Clone(inv.args), "--help")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Errorf("%s: the collector refuses its arguments %q (exit %d): %s", where, inv.args, exit.ExitCode(), strings.TrimSpace(stderr.String()))
	case err != nil:
		t.Fatal(err)
	}
}

// checkCollectorEnv checks that every COLLECTOR_* variable given to the
// collector is one it reads.
func checkCollectorEnv(t *testing.T, where string, set settings, names []string) {
	t.Helper()
	for _, name := range names {
		if !strings.HasPrefix(name, "COLLECTOR_") {
			continue
		}
		if _, ok := set.env[name]; !ok {
			valid := make([]string, 0, len(set.env))
			for n := range set.env {
				valid = append(valid, n)
			}
			slices.Sort(valid)
			t.Errorf("%s: environment variable %s is not one the collector reads; it reads %s", where, name, strings.Join(valid, ", "))
		}
	}
}

// logSources returns the --logs values of kind (file, k8s, docker) with the
// kind stripped.
func (inv invocation) logSources(kind string) []string {
	var got []string
	for _, v := range inv.flags["logs"] {
		for spec := range strings.SplitSeq(v, ",") {
			if rest, ok := strings.CutPrefix(spec, kind+":"); ok {
				got = append(got, rest)
			}
		}
	}
	return got
}

func TestCollectorVersion(t *testing.T) {
	out, err := exec.Command(collectorBinary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("collector version: %v\n%s", err, out)
	}
	if got, want := string(out), "collector "+testVersion+"\n"; got != want {
		t.Errorf("collector version printed %q; want %q (make build's VERSION through -ldflags -X main.version)", got, want)
	}
}

// TestMakeBuildVersionDefault checks that make build takes its version from
// git when VERSION is not given.
func TestMakeBuildVersionDefault(t *testing.T) {
	describe := func() string {
		cmd := exec.Command("git", "describe", "--always", "--dirty")
		cmd.Dir = repoRoot(t)
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("no git here to compare with: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	// Asked before and after make, in case a commit lands in between.
	before := describe()
	cmd := exec.Command("make", "-s", "-n", "build")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	after := describe()
	if !strings.Contains(string(out), "-X main.version="+before) && !strings.Contains(string(out), "-X main.version="+after) {
		t.Errorf("make build sets another version than git describe --always --dirty (%s):\n%s", after, out)
	}
}
