package resources

import (
	"fmt"
	"math"
	"strings"
)

// NVML is the part of NVIDIA's management library that the GPU source uses:
// go-nvml behind it in a build with cgo (gpu_nvml.go), a fake in tests.
type NVML interface {
	// Devices lists the GPUs, each followed by its MIG devices when MIG is
	// on.
	Devices() ([]GPUDevice, error)
	// Shutdown releases the library.
	Shutdown()
}

// GPUDevice is one GPU, or one MIG device of a GPU.
type GPUDevice interface {
	Info() GPUInfo
	// Read reads the device's figures now. A figure the device does not
	// report (utilisation of a MIG device, power on some boards) is NaN.
	Read() (GPUReading, error)
	// Processes returns the GPU memory, in bytes, used by each process on
	// the device, by pid.
	Processes() (map[int]uint64, error)
}

// GPUInfo names a device.
type GPUInfo struct {
	// ID is the device's name in field names: "0" for GPU 0, "0_mig1" for
	// its MIG device 1.
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	UUID string `json:"uuid,omitempty"`
	MIG  bool   `json:"mig,omitempty"`
}

// GPUReading is what a device reports at one moment; NaN where it does not.
type GPUReading struct {
	UtilPercent  float64
	MemoryUsed   float64 // bytes
	MemoryTotal  float64 // bytes
	PowerWatts   float64
	TemperatureC float64
	SMClockMHz   float64
}

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
