package child

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is the buffer the command's output pipes get where the system
// allows it (1 MiB is Linux's default /proc/sys/fs/pipe-max-size): the
// command writes on while the collector is between reads.
const pipeSize = 1 << 20

// growPipe enlarges the pipe of r; the system's default (64 KiB) stays
// when it refuses.
func growPipe(r *os.File) {
	if rc, err := r.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}
