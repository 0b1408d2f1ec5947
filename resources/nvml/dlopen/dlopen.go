//go:build linux

// Package dlopen binds the NVML calls of nvml.Library in this process: it
// loads libnvidia-ml.so.1 at run time with purego's Dlopen, so a machine
// without the driver gets an error, not a failed start, and the build needs
// no NVML headers. Importing it makes the executable dynamically linked
// (purego takes dlopen from the system's libc), which is why the static
// collector runs it in a helper process (package nvml).
package dlopen

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/mlsidecar/collector/resources/nvml"
)

// NVML's return codes, enums and sizes used here (nvml.h).
const (
	success          = 0
	errNotFound      = 6
	errInsufficient  = 7
	errGPUIsLost     = 15
	migEnable        = 1  // NVML_DEVICE_MIG_ENABLE
	temperatureGPU   = 0  // NVML_TEMPERATURE_GPU
	clockSM          = 1  // NVML_CLOCK_SM
	nameBufferSize   = 96 // NVML_DEVICE_NAME_V2_BUFFER_SIZE
	uuidBufferSize   = 96 // NVML_DEVICE_UUID_V2_BUFFER_SIZE
	maxProcessesCall = 1 << 16
)

// memory is nvmlMemory_t.
type memory struct{ Total, Free, Used uint64 }

// utilization is nvmlUtilization_t.
type utilization struct{ GPU, Memory uint32 }

// processInfo is nvmlProcessInfo_t (the _v2 and _v3 calls);
// processInfoV1 is nvmlProcessInfo_v1_t (the first call, before driver 470).
type processInfo struct {
	PID               uint32
	UsedGPUMemory     uint64
	GPUInstanceID     uint32
	ComputeInstanceID uint32
}

type processInfoV1 struct {
	PID           uint32
	UsedGPUMemory uint64
}

// handle is an nvmlDevice_t.
type handle = uintptr

// library holds the bound functions.
type library struct {
	initV2               func() int32
	shutdown             func() int32
	errorString          func(int32) string
	count                func(*uint32) int32
	handleByIndex        func(uint32, *handle) int32
	migMode              func(handle, *uint32, *uint32) int32
	maxMigDeviceCount    func(handle, *uint32) int32
	migDeviceHandle      func(handle, uint32, *handle) int32
	name                 func(handle, *byte, uint32) int32
	uuid                 func(handle, *byte, uint32) int32
	memoryInfo           func(handle, *memory) int32
	utilizationRates     func(handle, *utilization) int32
	powerUsage           func(handle, *uint32) int32
	temperature          func(handle, int32, *uint32) int32
	clockInfo            func(handle, int32, *uint32) int32
	computeProcesses     func(handle, *uint32, unsafe.Pointer) int32
	computeProcessesSize uintptr // the size of one record the call fills
}

// libraryName is NVML's library, as the NVIDIA container runtime mounts it.
const libraryName = "libnvidia-ml.so.1"

// Open loads libnvidia-ml.so.1 and initialises it. Its errors are one line
// starting "no GPU".
func Open() (nvml.Library, error) { return OpenLibrary(libraryName) }

// OpenLibrary is Open with the library at path (tests load a fake NVML).
func OpenLibrary(path string) (nvml.Library, error) {
	h, err := dlopen(path)
	if err != nil {
		if strings.Contains(err.Error(), "No such file") || strings.Contains(err.Error(), "cannot open shared object") {
			if path == libraryName {
				return nil, errors.New(nvml.NotFound)
			}
		}
		return nil, fmt.Errorf("no GPU: load %s: %s", path, oneLine(err.Error()))
	}
	l := &library{}
	bind := func(fptr any, names ...string) error {
		for _, name := range names {
			if sym, err := purego.Dlsym(h, name); err == nil && sym != 0 {
				purego.RegisterFunc(fptr, sym)
				return nil
			}
		}
		return fmt.Errorf("no GPU: %s has no %s (a driver older than this collector supports)", path, names[0])
	}
	for _, b := range []struct {
		fptr  any
		names []string
	}{
		{&l.initV2, []string{"nvmlInit_v2"}},
		{&l.shutdown, []string{"nvmlShutdown"}},
		{&l.errorString, []string{"nvmlErrorString"}},
		{&l.count, []string{"nvmlDeviceGetCount_v2"}},
		{&l.handleByIndex, []string{"nvmlDeviceGetHandleByIndex_v2"}},
		{&l.name, []string{"nvmlDeviceGetName"}},
		{&l.uuid, []string{"nvmlDeviceGetUUID"}},
		{&l.memoryInfo, []string{"nvmlDeviceGetMemoryInfo"}},
		{&l.utilizationRates, []string{"nvmlDeviceGetUtilizationRates"}},
		{&l.powerUsage, []string{"nvmlDeviceGetPowerUsage"}},
		{&l.temperature, []string{"nvmlDeviceGetTemperature"}},
		{&l.clockInfo, []string{"nvmlDeviceGetClockInfo"}},
	} {
		if err := bind(b.fptr, b.names...); err != nil {
			return nil, err
		}
	}
	// A driver older than MIG (before R450) lacks the MIG calls: then no
	// device is in MIG mode.
	if bind(&l.migMode, "nvmlDeviceGetMigMode") != nil ||
		bind(&l.maxMigDeviceCount, "nvmlDeviceGetMaxMigDeviceCount") != nil ||
		bind(&l.migDeviceHandle, "nvmlDeviceGetMigDeviceHandleByIndex") != nil {
		l.migMode = nil
	}
	// The process records grew a field in R470 (the _v2 call, and _v3).
	l.computeProcessesSize = unsafe.Sizeof(processInfo{})
	if bind(&l.computeProcesses, "nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2") != nil {
		if err := bind(&l.computeProcesses, "nvmlDeviceGetComputeRunningProcesses"); err != nil {
			return nil, err
		}
		l.computeProcessesSize = unsafe.Sizeof(processInfoV1{})
	}
	if ret := l.initV2(); ret != success {
		return nil, fmt.Errorf("no GPU: NVML did not initialise: %s", l.describe(ret))
	}
	return l, nil
}

// describe names a return code as NVML does.
func (l *library) describe(ret int32) string {
	if s := l.errorString(ret); s != "" {
		return oneLine(s)
	}
	return "NVML error " + strconv.Itoa(int(ret))
}

// dlopen is purego.Dlopen on one OS thread: its error is dlerror's, which
// is the calling thread's, and a goroutine moved to another thread between
// the two calls gets an empty message.
func dlopen(path string) (uintptr, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (l *library) Shutdown() { l.shutdown() }

func (l *library) Devices() ([]nvml.Device, error) {
	var n uint32
	if ret := l.count(&n); ret != success {
		return nil, fmt.Errorf("count devices: %s", l.describe(ret))
	}
	var devs []nvml.Device
	for i := range n {
		var h handle
		if ret := l.handleByIndex(i, &h); ret != success {
			return nil, fmt.Errorf("device %d: %s", i, l.describe(ret))
		}
		id := strconv.Itoa(int(i))
		devs = append(devs, l.newDevice(h, id, false))
		var cur, pending uint32
		if l.migMode == nil {
			continue
		}
		if ret := l.migMode(h, &cur, &pending); ret != success || cur != migEnable {
			continue
		}
		var count uint32
		if ret := l.maxMigDeviceCount(h, &count); ret != success {
			continue
		}
		for m := range count {
			var mh handle
			if ret := l.migDeviceHandle(h, m, &mh); ret != success {
				continue // no MIG device in that slot
			}
			devs = append(devs, l.newDevice(mh, id+"_mig"+strconv.Itoa(int(m)), true))
		}
	}
	return devs, nil
}

type device struct {
	l    *library
	h    handle
	info nvml.Info
}

func (l *library) newDevice(h handle, id string, mig bool) *device {
	text := func(call func(handle, *byte, uint32) int32, size int) string {
		buf := make([]byte, size)
		if call(h, &buf[0], uint32(size)) != success {
			return ""
		}
		if i := strings.IndexByte(string(buf), 0); i >= 0 {
			buf = buf[:i]
		}
		return string(buf)
	}
	return &device{l: l, h: h, info: nvml.Info{ID: id, Name: text(l.name, nameBufferSize), UUID: text(l.uuid, uuidBufferSize), MIG: mig}}
}

func (d *device) Info() nvml.Info { return d.info }

func (d *device) Read() (nvml.Reading, error) {
	nan := math.NaN()
	r := nvml.Reading{UtilPercent: nan, MemoryUsed: nan, MemoryTotal: nan, PowerWatts: nan, TemperatureC: nan, SMClockMHz: nan}
	var mem memory
	switch ret := d.l.memoryInfo(d.h, &mem); ret {
	case errGPUIsLost:
		return r, errors.New("the GPU is lost")
	case success:
		r.MemoryUsed, r.MemoryTotal = float64(mem.Used), float64(mem.Total)
	}
	var u utilization
	if d.l.utilizationRates(d.h, &u) == success {
		r.UtilPercent = float64(u.GPU)
	}
	var v uint32
	if d.l.powerUsage(d.h, &v) == success {
		r.PowerWatts = float64(v) / 1000
	}
	if d.l.temperature(d.h, temperatureGPU, &v) == success {
		r.TemperatureC = float64(v)
	}
	if d.l.clockInfo(d.h, clockSM, &v) == success {
		r.SMClockMHz = float64(v)
	}
	return r, nil
}

func (d *device) Processes() (map[int]uint64, error) {
	// Ask with room for a few; NVML says how many there are when that is
	// too few, and their number may grow between two calls.
	for n := uint32(8); n <= maxProcessesCall; n *= 4 {
		count := n
		var ret int32
		m := map[int]uint64{}
		if d.l.computeProcessesSize == unsafe.Sizeof(processInfoV1{}) {
			buf := make([]processInfoV1, n)
			ret = d.l.computeProcesses(d.h, &count, unsafe.Pointer(&buf[0]))
			for _, p := range buf[:min(count, n)] {
				m[int(p.PID)] += p.UsedGPUMemory
			}
		} else {
			buf := make([]processInfo, n)
			ret = d.l.computeProcesses(d.h, &count, unsafe.Pointer(&buf[0]))
			for _, p := range buf[:min(count, n)] {
				m[int(p.PID)] += p.UsedGPUMemory
			}
		}
		switch ret {
		case success:
			return m, nil
		case errInsufficient:
			for n < count/4 {
				n *= 4 // the next round asks for at least count
			}
			continue
		case errNotFound:
			return map[int]uint64{}, nil
		default:
			return nil, fmt.Errorf("processes: %s", d.l.describe(ret))
		}
	}
	return nil, errors.New("processes: more than NVML would list")
}
