package deploy

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStaticBinary checks that make build's binary is a static executable,
// which the wrapper forms can copy into any job image (an old glibc, musl,
// distroless), and that it works where there is no libc at all: chrooted
// into a folder holding only the binary and an outputs folder (no libc, no
// shell, no /proc, no /tmp), it wraps a command (itself: `collector
// version`), syncs the outputs into a file:// store inside that root, and
// says why it has no GPU.
func TestStaticBinary(t *testing.T) {
	bin := collectorBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("make build's binary has a %v program header: it is dynamically linked, and fails on a job image without the libc it was built with", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("make build's binary needs shared libraries %q (%v); want none", libs, err)
	}

	if os.Geteuid() != 0 {
		t.Skip("running the binary in an empty root needs chroot, which needs root (CI runs as root)")
	}
	root := t.TempDir()
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"model.pt":         bytes.Repeat([]byte("weights "), 10000),
		"metrics/loss.csv": []byte("step,loss\n1,0.5\n"),
	}
	for name, data := range files {
		path := filepath.Join(root, "outputs", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "collector"), exe, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("/collector", "--outputs-path", "/outputs", "--store", "file:///store", "--run", "static",
		"--state-dir", "/state", "--resources-interval", "1", "--", "/collector", "version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("collector in an empty root: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if got, want := stdout.String(), "collector "+testVersion+"\n"; got != want {
		t.Errorf("the wrapped command printed %q; want %q", got, want)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, "store", "static", "outputs", name))
		if err != nil {
			t.Errorf("the store: %v\nstderr:\n%s", err, stderr.String())
		} else if !bytes.Equal(got, want) {
			t.Errorf("the store's %s: %d bytes, want the %d of the outputs folder", name, len(got), len(want))
		}
	}
	// The GPU source is built in (not a build without NVML support); here
	// it finds no libc for the NVML helper, and says so.
	if !strings.Contains(stderr.String(), "no GPU: this image has no glibc") {
		t.Errorf("the collector's log does not say why there is no GPU (want \"no GPU: this image has no glibc ...\"):\n%s", stderr.String())
	}
}
