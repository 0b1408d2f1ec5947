//go:build linux

package nvml

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Helper is NVML through the helper executable: a Library whose calls go to
// the helper process.
type Helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	exit  chan struct{} // closed once the process has been waited for

	mu      sync.Mutex
	enc     *json.Encoder
	dec     *json.Decoder
	stopped error // set once the helper stopped answering
}

// OpenHelper starts the helper executable exe (collector-nvml, built from
// ./helper) and waits for it to say whether NVML opened. The executable
// runs from memory (memfd), so that the job image needs no writable,
// executable folder; it needs glibc's dynamic loader, as libnvidia-ml does.
// Errors are one line starting "no GPU".
func OpenHelper(exe []byte) (*Helper, error) {
	f, err := elf.NewFile(bytes.NewReader(exe))
	if err != nil {
		return nil, fmt.Errorf("no GPU: the NVML helper embedded in this binary is not an executable: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return nil, fmt.Errorf("no GPU: the NVML helper embedded in this binary is not an executable: %w", err)
		}
		loader := strings.TrimRight(string(b), "\x00")
		if _, err := os.Stat(loader); err != nil {
			return nil, fmt.Errorf("no GPU: this image has no glibc (no %s), which libnvidia-ml needs", loader)
		}
	}
	fd, err := unix.MemfdCreate("collector-nvml", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("no GPU: start the NVML helper: memfd: %w", err)
	}
	mf := os.NewFile(uintptr(fd), "collector-nvml")
	defer mf.Close()
	if _, err := mf.Write(exe); err != nil {
		return nil, fmt.Errorf("no GPU: start the NVML helper: %w", err)
	}
	cmd := exec.Command(fmt.Sprintf("/proc/self/fd/%d", fd))
	cmd.Args[0] = "collector-nvml"
	// Its own process group: a Ctrl-C at the terminal is the collector's
	// to handle; the helper ends when its input does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("no GPU: start the NVML helper: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("no GPU: start the NVML helper: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{buf: &stderr, left: 4096}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("no GPU: start the NVML helper: %w", err)
	}
	h := &Helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), exit: make(chan struct{})}
	h.enc = json.NewEncoder(stdin)
	h.dec = json.NewDecoder(h.out)
	var first response
	if err := h.dec.Decode(&first); err != nil {
		stdin.Close()
		werr := cmd.Wait()
		close(h.exit)
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if msg == "" && werr != nil {
			msg = werr.Error()
		}
		return nil, fmt.Errorf("no GPU: the NVML helper failed: %s", msg)
	}
	if first.Err != "" {
		stdin.Close()
		cmd.Wait()
		close(h.exit)
		return nil, errors.New(first.Err)
	}
	go func() {
		cmd.Wait()
		close(h.exit)
	}()
	return h, nil
}

// callTimeout bounds one NVML call through the helper.
var callTimeout = 10 * time.Second

// PID is the helper process's: it is the collector's, not the job's.
func (h *Helper) PID() int { return h.cmd.Process.Pid }

// call sends one request and reads its response.
func (h *Helper) call(req request) (response, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped != nil {
		return response{}, h.stopped
	}
	// A call that hangs (a driver that does not answer) would stop the
	// sampling: the helper is killed, and the GPU source fails from then on.
	hung := time.AfterFunc(callTimeout, func() { h.cmd.Process.Kill() })
	var resp response
	err := h.enc.Encode(req)
	if err == nil {
		err = h.dec.Decode(&resp)
	}
	if !hung.Stop() {
		err = fmt.Errorf("no answer in %v", callTimeout)
		// The kill closes the pipes before the process is gone: wait for
		// it, unless the driver holds it in the kernel.
		select {
		case <-h.exit:
		case <-time.After(2 * time.Second):
		}
	}
	if err != nil {
		h.stopped = fmt.Errorf("the NVML helper stopped: %w", err)
		return response{}, h.stopped
	}
	if resp.Err != "" {
		return response{}, errors.New(resp.Err)
	}
	return resp, nil
}

// Devices implements Library.
func (h *Helper) Devices() ([]Device, error) {
	resp, err := h.call(request{Op: "devices"})
	if err != nil {
		return nil, err
	}
	devs := make([]Device, len(resp.Devices))
	for i, info := range resp.Devices {
		devs[i] = &helperDevice{h: h, index: i, info: info}
	}
	return devs, nil
}

// Shutdown implements Library: the helper shuts NVML down and exits once
// its input ends; it is killed if it has not within a few seconds.
func (h *Helper) Shutdown() {
	h.mu.Lock()
	h.stdin.Close()
	h.stopped = errors.New("NVML is shut down")
	h.mu.Unlock()
	select {
	case <-h.exit:
	case <-time.After(3 * time.Second):
		h.cmd.Process.Kill()
		<-h.exit
	}
}

type helperDevice struct {
	h     *Helper
	index int
	info  Info
}

func (d *helperDevice) Info() Info { return d.info }

func (d *helperDevice) Read() (Reading, error) {
	resp, err := d.h.call(request{Op: "read", Dev: d.index})
	if err != nil {
		return Reading{}, err
	}
	if resp.Reading == nil {
		return Reading{}, errors.New("the NVML helper sent no reading")
	}
	return resp.Reading.reading(), nil
}

func (d *helperDevice) Processes() (map[int]uint64, error) {
	resp, err := d.h.call(request{Op: "processes", Dev: d.index})
	if err != nil {
		return nil, err
	}
	if resp.Processes == nil {
		resp.Processes = map[int]uint64{}
	}
	return resp.Processes, nil
}

// limitedWriter keeps the first bytes of the helper's stderr, for the
// error when it fails to start.
type limitedWriter struct {
	buf  *bytes.Buffer
	left int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.left > 0 {
		n := min(len(p), w.left)
		w.buf.Write(p[:n])
		w.left -= n
	}
	return len(p), nil
}
