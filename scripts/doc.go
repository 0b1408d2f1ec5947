// Package scripts holds the shell scripts of the test command: test.sh (what
// `make test` and CI run) and servers.sh, which installs and starts the S3,
// GCS and Azure servers the tests talk to.
package scripts
