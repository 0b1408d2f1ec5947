//go:build linux

package nvml_test

import (
	"bytes"
	"debug/elf"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/resources/nvml"
	"github.com/mlsidecar/collector/resources/nvml/dlopen"
)

// fakeLibrary builds testdata/fakenvml.c into dir/libnvidia-ml.so.1 and
// returns dir.
func fakeLibrary(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) to build the fake libnvidia-ml.so.1")
	}
	dir := t.TempDir()
	out, err := exec.Command(cc, "-shared", "-fPIC", "-o", filepath.Join(dir, "libnvidia-ml.so.1"), "testdata/fakenvml.c").CombinedOutput()
	if err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	return dir
}

// helperExe builds the helper as `make build` does (go generate: no cgo)
// and returns the executable.
func helperExe(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "collector-nvml")
	cmd := exec.Command("go", "build", "-o", path, "./helper")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./helper: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// checkFake checks what lib reads from the fake library: GPU 0, its MIG
// device in slot 1, GPU 1 (lost), their figures and GPU 0's processes.
func checkFake(t *testing.T, lib nvml.Library) {
	t.Helper()
	devs, err := lib.Devices()
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	var infos []nvml.Info
	for _, d := range devs {
		infos = append(infos, d.Info())
	}
	want := []nvml.Info{
		{ID: "0", Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-0"},
		{ID: "0_mig1", Name: "NVIDIA H100 80GB HBM3 MIG 1g.10gb", UUID: "MIG-0-1", MIG: true},
		{ID: "1", Name: "Tesla T4", UUID: "GPU-1"},
	}
	if len(infos) != len(want) {
		t.Fatalf("devices %+v, want %+v", infos, want)
	}
	for i := range want {
		if infos[i] != want[i] {
			t.Errorf("device %d: %+v, want %+v", i, infos[i], want[i])
		}
	}
	nan := math.NaN()
	for i, want := range []nvml.Reading{
		{UtilPercent: 50, MemoryUsed: 10 << 30, MemoryTotal: 80 << 30, PowerWatts: 312.5, TemperatureC: 61, SMClockMHz: 1980},
		{UtilPercent: nan, MemoryUsed: 1 << 30, MemoryTotal: 10 << 30, PowerWatts: nan, TemperatureC: nan, SMClockMHz: nan},
	} {
		got, err := devs[i].Read()
		if err != nil {
			t.Fatalf("%s: Read: %v", infos[i].ID, err)
		}
		g := []float64{got.UtilPercent, got.MemoryUsed, got.MemoryTotal, got.PowerWatts, got.TemperatureC, got.SMClockMHz}
		w := []float64{want.UtilPercent, want.MemoryUsed, want.MemoryTotal, want.PowerWatts, want.TemperatureC, want.SMClockMHz}
		for k := range g {
			if g[k] != w[k] && !(math.IsNaN(g[k]) && math.IsNaN(w[k])) {
				t.Errorf("%s: Read %+v, want %+v", infos[i].ID, got, want)
				break
			}
		}
	}
	if _, err := devs[2].Read(); err == nil || err.Error() != "the GPU is lost" {
		t.Errorf("GPU 1: Read: %v, want \"the GPU is lost\"", err)
	}
	procs, err := devs[0].Processes()
	if err != nil {
		t.Fatalf("Processes: %v", err)
	}
	if len(procs) != 10 || procs[1000] != 1<<30 || procs[1009] != 1<<30 {
		t.Errorf("GPU 0's processes %v, want pids 1000-1009, 1 GiB each", procs)
	}
	if procs, err := devs[1].Processes(); err != nil || len(procs) != 0 {
		t.Errorf("the MIG device's processes: %v, %v; want none", procs, err)
	}
}

// TestDlopen loads the fake NVML into the test's own process, as a build
// with cgo does.
func TestDlopen(t *testing.T) {
	dir := fakeLibrary(t)
	lib, err := dlopen.OpenLibrary(filepath.Join(dir, "libnvidia-ml.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Shutdown()
	checkFake(t, lib)
}

// TestHelper reads the fake NVML through the helper as the static
// collector runs it (from memory, found on LD_LIBRARY_PATH), and checks
// that the helper exits when NVML is shut down.
func TestHelper(t *testing.T) {
	exe := helperExe(t)
	t.Setenv("LD_LIBRARY_PATH", fakeLibrary(t))
	h, err := nvml.OpenHelper(exe)
	if err != nil {
		t.Fatal(err)
	}
	checkFake(t, h)
	pid := h.PID()
	h.Shutdown()
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		t.Errorf("the helper (pid %d) is still there after Shutdown: %s", pid, b)
	}
	if _, err := h.Devices(); err == nil {
		t.Error("Devices after Shutdown: no error")
	}
}

// TestHelperWithoutNVML: where the job image has no libnvidia-ml the helper
// says so, and where it has no glibc (musl, distroless/static, an empty
// root) the collector says so without starting the helper.
func TestHelperWithoutNVML(t *testing.T) {
	exe := helperExe(t)
	t.Setenv("LD_LIBRARY_PATH", t.TempDir())
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"); err == nil {
		t.Skip("this machine has NVML")
	}
	if _, err := nvml.OpenHelper(exe); err == nil || err.Error() != nvml.NotFound {
		t.Errorf("OpenHelper: %v, want %q", err, nvml.NotFound)
	}

	// The same helper, its loader named as one this machine lacks.
	f, err := elf.NewFile(bytes.NewReader(exe))
	if err != nil {
		t.Fatal(err)
	}
	var loader string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			p.ReadAt(b, 0)
			loader = strings.TrimRight(string(b), "\x00")
		}
	}
	if loader == "" {
		t.Fatal("the helper has no PT_INTERP: it is not linked against libc")
	}
	missing := "/nonexistent" + loader[len("/nonexistent"):]
	exe = bytes.Replace(exe, []byte(loader), []byte(missing), 1)
	_, err = nvml.OpenHelper(exe)
	if want := "no GPU: this image has no glibc (no " + missing + "), which libnvidia-ml needs"; err == nil || err.Error() != want {
		t.Errorf("OpenHelper without the loader: %v, want %q", err, want)
	}
}

// TestHelperHangs: a call the driver does not answer ends in an error, the
// helper is killed, and later calls fail at once.
func TestHelperHangs(t *testing.T) {
	exe := helperExe(t)
	t.Setenv("LD_LIBRARY_PATH", fakeLibrary(t))
	t.Setenv("FAKE_NVML_HANG", "1")
	defer nvml.SetCallTimeout(500 * time.Millisecond)()
	h, err := nvml.OpenHelper(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown()
	devs, err := h.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devs[0].Read(); err == nil || !strings.Contains(err.Error(), "the NVML helper stopped: no answer in 500ms") {
		t.Errorf("Read of a hung device: %v, want \"the NVML helper stopped: no answer in 500ms\"", err)
	}
	if _, err := devs[0].Processes(); err == nil || !strings.Contains(err.Error(), "the NVML helper stopped") {
		t.Errorf("a call after the helper stopped: %v, want \"the NVML helper stopped ...\"", err)
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(h.PID()) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Errorf("the hung helper is still running: %s", b)
	}
}
