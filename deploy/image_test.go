package deploy

import (
	"encoding/json"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string
	line int
}

// stage is a build stage: FROM and what follows it.
type stage struct {
	image, name string
	instrs      []instruction
}

// dockerfile is a parsed Dockerfile: the global ARGs before the first FROM
// (name -> default) and the stages.
type dockerfile struct {
	args   map[string]string
	stages []*stage
}

// parseDockerfile reads the subset of the Dockerfile syntax ours uses:
// instructions, comments, and lines continued with a backslash.
func parseDockerfile(t *testing.T, text string) dockerfile {
	t.Helper()
	df := dockerfile{args: map[string]string{}}
	var cur strings.Builder
	start := 0
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			st := &stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0 && in.cmd == "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			df.args[name] = def
		case len(df.stages) == 0:
			t.Fatalf("Dockerfile line %d: %s before the first FROM", in.line, in.cmd)
		default:
			st := df.stages[len(df.stages)-1]
			st.instrs = append(st.instrs, in)
		}
	}
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	if len(df.stages) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	return df
}

// expand replaces ${NAME} and $NAME with vars[NAME].
func expand(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`).ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
}

// shellWords splits a shell command line into words, with single and double
// quotes and backslash escapes (no expansions: the caller expands first).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unclosed ' in %q", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				t.Fatalf("unclosed \" in %q", s)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// goBuild is one `go build` command: its environment assignments, its flags
// (name -> value, "" for a flag without one) and its packages.
type goBuild struct {
	env      map[string]string
	flags    map[string]string
	packages []string
	generate []string // the go generate commands run before (make's)
}

// findGoBuild finds the `go build` in a shell command line (one of the
// commands joined with && or ;).
func findGoBuild(t *testing.T, where, line string) (goBuild, bool) {
	t.Helper()
	for _, part := range regexp.MustCompile(`&&|;|\|\||\n`).Split(line, -1) {
		words := shellWords(t, part)
		gb := goBuild{env: map[string]string{}, flags: map[string]string{}}
		for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
			k, v, _ := strings.Cut(words[0], "=")
			gb.env[k] = v
			words = words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			continue
		}
		for i := 2; i < len(words); i++ {
			w := words[i]
			if !strings.HasPrefix(w, "-") {
				gb.packages = append(gb.packages, w)
				continue
			}
			name, value, ok := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if !ok && slices.Contains([]string{"tags", "ldflags", "o", "gcflags", "mod", "buildmode", "p"}, name) {
				if i+1 >= len(words) {
					t.Fatalf("%s: %s without a value", where, w)
				}
				i++
				value = words[i]
			}
			gb.flags[name] = value
		}
		return gb, true
	}
	return goBuild{}, false
}

// makeBuild is the Makefile's build command, as make runs it.
func makeBuild(t *testing.T, version, bin string) goBuild {
	t.Helper()
	cmd := exec.Command("make", "-s", "-n", "build", "VERSION="+version, "BIN="+bin)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	gb, ok := findGoBuild(t, "Makefile", string(out))
	if !ok {
		t.Fatalf("make build runs no go build:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "go generate ") {
			gb.generate = append(gb.generate, strings.TrimSpace(line))
		}
	}
	return gb
}

// dockerBuild is the Dockerfile's go build, with VERSION set to version, and
// the stage that runs it.
func dockerBuild(t *testing.T, df dockerfile, version string) (goBuild, *stage) {
	t.Helper()
	for _, st := range df.stages {
		vars := map[string]string{}
		for _, in := range st.instrs {
			switch in.cmd {
			case "ARG":
				name, def, _ := strings.Cut(in.args, "=")
				vars[name] = def
				if name == "VERSION" {
					vars[name] = version
				}
			case "RUN":
				// RUN --mount=... flags come before the command.
				cmdline := in.args
				for strings.HasPrefix(cmdline, "--") {
					_, cmdline, _ = strings.Cut(cmdline, " ")
					cmdline = strings.TrimSpace(cmdline)
				}
				if gb, ok := findGoBuild(t, "Dockerfile", expand(cmdline, vars)); ok {
					return gb, st
				}
			}
		}
	}
	t.Fatal("the Dockerfile runs no go build")
	return goBuild{}, nil
}

// TestDockerfileBuildsLikeMake checks that the image's binary is the one
// make build makes: the same flags (tags, ldflags with the version,
// trimpath) and package, static (cgo off).
func TestDockerfileBuildsLikeMake(t *testing.T) {
	df := parseDockerfile(t, string(repoFile(t, "Dockerfile")))
	const version = "v9.8.7-test"
	mk := makeBuild(t, version, "/out/collector")
	dk, st := dockerBuild(t, df, version)

	if !slices.Equal(dk.packages, mk.packages) {
		t.Errorf("packages: Dockerfile builds %q, Makefile %q", dk.packages, mk.packages)
	}
	for name, want := range mk.flags {
		if name == "o" {
			continue
		}
		if got, ok := dk.flags[name]; !ok || got != want {
			t.Errorf("go build -%s: Dockerfile has %q (given: %v), Makefile %q", name, got, ok, want)
		}
	}
	for name, got := range dk.flags {
		if _, ok := mk.flags[name]; !ok && name != "o" {
			t.Errorf("go build -%s=%q: in the Dockerfile, not in the Makefile", name, got)
		}
	}
	if !strings.Contains(dk.flags["tags"], "disable_grpc_modules") {
		t.Errorf("go build -tags %q: want disable_grpc_modules, the shipped binary's tag", dk.flags["tags"])
	}
	if !strings.Contains(dk.flags["ldflags"], "-X main.version="+version) {
		t.Errorf("go build -ldflags %q: the Dockerfile's VERSION build argument does not reach main.version", dk.flags["ldflags"])
	}
	// A static binary, as make build makes it: it runs on any job image
	// (the wrapper forms copy it there), NVML loaded without cgo.
	if dk.env["CGO_ENABLED"] != "0" {
		t.Errorf("the Dockerfile's go build runs with CGO_ENABLED=%q; want 0 (a static binary)", dk.env["CGO_ENABLED"])
	}
	if v, ok := mk.env["CGO_ENABLED"]; ok && v != dk.env["CGO_ENABLED"] {
		t.Errorf("CGO_ENABLED: Dockerfile %q, Makefile %q", dk.env["CGO_ENABLED"], v)
	}
	if dk.flags["o"] == "" {
		t.Fatal("the Dockerfile's go build has no -o")
	}
	// What make build generates first (the NVML helper), the Dockerfile too.
	var runs strings.Builder
	for _, in := range st.instrs {
		if in.cmd == "RUN" {
			runs.WriteString(in.args + "\n")
		}
	}
	for _, g := range mk.generate {
		if !strings.Contains(runs.String(), g) {
			t.Errorf("make build runs %q; the Dockerfile's build stage does not", g)
		}
	}

	// The builder's Go is the one go.mod asks for (same minor version).
	goDirective := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)$`).FindSubmatch(repoFile(t, "go.mod"))
	if goDirective == nil {
		t.Fatal("go.mod has no go directive")
	}
	goVersion := string(goDirective[1])
	builder := expand(st.image, df.args)
	m := regexp.MustCompile(`^golang:(\d+\.\d+)(?:\.\d+)?-(\w+)$`).FindStringSubmatch(builder)
	if m == nil {
		t.Fatalf("the build stage's image %q: want golang:<major.minor>-<debian release>", builder)
	}
	if want := strings.Join(strings.Split(goVersion, ".")[:2], "."); m[1] != want {
		t.Errorf("the build stage's Go %s; go.mod wants go %s", m[1], goVersion)
	}
}

// image is what the Dockerfile's runtime stage makes.
type image struct {
	base       string
	entrypoint []string
	cmd        []string
	user       string
	installed  string // the RUN lines, padded with spaces
	binary     string // where the collector is in the image
	workdir    string
	env        map[string]string
}

// readImage reads the runtime stage of the Dockerfile.
func readImage(t *testing.T) image {
	t.Helper()
	df := parseDockerfile(t, string(repoFile(t, "Dockerfile")))
	gb, build := dockerBuild(t, df, "v0")
	final := df.stages[len(df.stages)-1]
	if final == build {
		t.Fatal("the Dockerfile has one stage; want a build stage and a small runtime stage")
	}
	img := image{base: final.image, env: map[string]string{}}
	for _, in := range final.instrs {
		switch in.cmd {
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+build.name && f[1] == gb.flags["o"] {
				img.binary = f[2]
			}
		case "RUN":
			img.installed += " " + in.args + " "
		case "USER":
			img.user = in.args
		case "WORKDIR":
			img.workdir = in.args
		case "ENV":
			k, v, _ := strings.Cut(in.args, "=")
			img.env[k] = v
		case "ENTRYPOINT", "CMD":
			var words []string
			if err := json.Unmarshal([]byte(in.args), &words); err != nil {
				t.Errorf("Dockerfile line %d: %s %s is not in exec form (a JSON array): a shell as PID 1 does not pass signals on", in.line, in.cmd, in.args)
			}
			if in.cmd == "ENTRYPOINT" {
				img.entrypoint = words
			} else {
				img.cmd = words
			}
		}
	}
	if img.binary == "" {
		t.Fatalf("the runtime stage copies no %s from stage %q", gb.flags["o"], build.name)
	}
	if strings.HasSuffix(img.binary, "/") {
		img.binary += path.Base(gb.flags["o"])
	}
	return img
}

// TestDockerfileImage checks the runtime image: a base with a userland, the binary
// copied from the build, CA certificates, a non-root user, and tini then the
// collector as the entrypoint, so that wrapper mode as PID 1 reaps orphans.
func TestDockerfileImage(t *testing.T) {
	img := readImage(t)
	if img.base == "scratch" || strings.Contains(img.base, "distroless") {
		t.Errorf("runtime image %q has no cp and no test: the Kubernetes wrapper form's init container copies the collector with cp, the compose healthcheck runs test", img.base)
	}
	for _, pkg := range []string{"ca-certificates", "tini"} {
		if !strings.Contains(img.installed, " "+pkg+" ") {
			t.Errorf("the runtime stage does not install %s", pkg)
		}
	}
	if u := img.user; u == "" || u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("USER %q: want a non-root user", u)
	}
	if e := img.entrypoint; len(e) < 3 || path.Base(e[0]) != "tini" || e[len(e)-2] != "--" || e[len(e)-1] != img.binary {
		t.Errorf("ENTRYPOINT %q: want [tini [options] -- %s]", e, img.binary)
	} else {
		for _, option := range e[1 : len(e)-2] {
			if !strings.HasPrefix(option, "-") {
				t.Errorf("ENTRYPOINT %q: %q between tini and -- is not an option of tini", e, option)
			}
		}
	}
	if len(img.cmd) > 0 {
		t.Errorf("CMD %q: want none, so that the arguments given to the container are the collector's", img.cmd)
	}
	checkCollectorEnv(t, "Dockerfile ENV", collectorSettings(t), keys(img.env))
}

// keys returns a map's keys, sorted.
func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestDockerfileNeedsNoRegistryFrontend: no `# syntax=` parser directive,
// which makes every build fetch a Dockerfile frontend image from a registry
// first (an air-gapped build fails at once); the engine's built-in frontend
// handles what the Dockerfile uses (RUN --mount).
func TestDockerfileNeedsNoRegistryFrontend(t *testing.T) {
	for i, line := range strings.Split(string(repoFile(t, "Dockerfile")), "\n") {
		if regexp.MustCompile(`(?i)^#\s*syntax\s*=`).MatchString(strings.TrimSpace(line)) {
			t.Errorf("Dockerfile line %d: %q: a build then needs the registry's frontend image", i+1, line)
		}
	}
}
