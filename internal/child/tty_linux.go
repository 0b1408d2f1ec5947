package child

import (
	"golang.org/x/sys/unix"
)

// interactive reports whether the collector runs in the foreground of the
// terminal on its stdin: a Ctrl-C there reaches its whole process group, the
// command included.
func interactive() bool {
	fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}
