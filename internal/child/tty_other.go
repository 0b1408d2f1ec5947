//go:build !linux

package child

// interactive is false where the terminal's foreground group is not looked
// at: a SIGINT is then passed on to the command.
func interactive() bool { return false }
