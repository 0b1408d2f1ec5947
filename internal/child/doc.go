// Package child owns the wrapped command of wrapper mode (collector -- CMD ...):
// starting it, passing on SIGTERM and SIGINT, and turning its end into an
// exit code (128+signal when killed). Its stdout and stderr go to the
// collector's own unchanged (kubectl logs and docker logs keep working)
// through an Output each, which also offers them line by line to log
// collection without ever blocking the command.
package child
