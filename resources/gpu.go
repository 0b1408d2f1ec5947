package resources

import (
	"fmt"
	"math"
	"strings"

	"github.com/mlsidecar/collector/resources/nvml"
)

// NVML is the part of NVIDIA's management library that the GPU source uses
// (package nvml): NVML loaded in this process in a build with cgo, the NVML
// helper in `make build`'s static binary, a fake in tests.
type NVML = nvml.Library

// GPUDevice is one GPU, or one MIG device of a GPU.
type GPUDevice = nvml.Device

// GPUInfo names a device.
type GPUInfo = nvml.Info

// GPUReading is what a device reports at one moment; NaN where it does not.
type GPUReading = nvml.Reading

// GPU measures NVIDIA GPUs through NVML: per device, utilisation, memory
// used and total, power, temperature and SM clock, and the GPU memory of
// the job's processes.
type GPU struct {
	lib     NVML
	devices []GPUDevice
	infos   []GPUInfo
	job     func(pid int) bool
}

// NewGPU lists the devices of lib. job tells whether a pid is one of the
// job's processes (nil: none is). It fails with "no GPU: <reason>" when lib
// is nil (the library did not load) or sees no device.
func NewGPU(lib NVML, job func(pid int) bool) (*GPU, error) {
	devices, err := lib.Devices()
	if err != nil {
		lib.Shutdown()
		return nil, fmt.Errorf("no GPU: %w", err)
	}
	if len(devices) == 0 {
		lib.Shutdown()
		return nil, fmt.Errorf("no GPU: NVML sees no device")
	}
	g := &GPU{lib: lib, devices: devices, job: job}
	for _, d := range devices {
		g.infos = append(g.infos, d.Info())
	}
	return g, nil
}

// Name implements Source.
func (g *GPU) Name() string { return "GPU" }

// Devices lists the devices measured.
func (g *GPU) Devices() []GPUInfo { return g.infos }

// Describe says which devices are measured, for the start's log line.
func (g *GPU) Describe() string {
	var parts []string
	for _, i := range g.infos {
		kind := "GPU"
		if i.MIG {
			kind = "MIG device"
		}
		parts = append(parts, fmt.Sprintf("gpu%s: %s %s (%s)", i.ID, kind, i.Name, i.UUID))
	}
	return strings.Join(parts, "; ")
}

// keepOutOfTree keeps the process that serves lib, the NVML helper (the
// collector's own), out of the job's process tree t.
func keepOutOfTree(t *ProcessTree, lib NVML) {
	if h, ok := lib.(interface{ PID() int }); ok && t != nil {
		t.outside[h.PID()] = true
	}
}

// Close releases NVML.
func (g *GPU) Close() { g.lib.Shutdown() }

// Sample implements Source: gpuN_util_percent, gpuN_memory_used_bytes,
// gpuN_memory_total_bytes, gpuN_power_watts, gpuN_temperature_celsius,
// gpuN_sm_clock_mhz and gpuN_job_memory_bytes, for each device N (a MIG
// device is gpuN_migM) and each figure it reports.
func (g *GPU) Sample(s *Sample) error {
	var firstErr error
	for i, d := range g.devices {
		r, err := d.Read()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("gpu%s: %w", g.infos[i].ID, err)
			}
			continue
		}
		p := "gpu" + g.infos[i].ID + "_"
		add := func(name string, v float64) {
			if !math.IsNaN(v) {
				s.Add(p+name, v)
			}
		}
		add("util_percent", r.UtilPercent)
		add("memory_used_bytes", r.MemoryUsed)
		add("memory_total_bytes", r.MemoryTotal)
		add("power_watts", round(r.PowerWatts, 3))
		add("temperature_celsius", r.TemperatureC)
		add("sm_clock_mhz", r.SMClockMHz)
		if procs, err := d.Processes(); err == nil {
			var job uint64
			for pid, mem := range procs {
				if g.job != nil && g.job(pid) {
					job += mem
				}
			}
			s.Add(p+"job_memory_bytes", float64(job))
		}
	}
	return firstErr
}

// gpuSuffixes are the names of a device's fields after "gpuN_".
var gpuSuffixes = []string{"util_percent", "memory_used_bytes", "memory_total_bytes", "power_watts",
	"temperature_celsius", "sm_clock_mhz", "job_memory_bytes"}

// splitGPUField splits "gpu0_mig1_util_percent" into "0_mig1" and
// "util_percent".
func splitGPUField(name string) (id, suffix string, ok bool) {
	if !strings.HasPrefix(name, "gpu") {
		return "", "", false
	}
	for _, sfx := range gpuSuffixes {
		if strings.HasSuffix(name, "_"+sfx) && len(name) > len("gpu_")+len(sfx) {
			return name[3 : len(name)-len(sfx)-1], sfx, true
		}
	}
	return "", "", false
}
