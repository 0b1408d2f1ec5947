// Package scripts holds the shell scripts of the test command: test.sh (what
// `make test` and CI run) and servers.sh, which installs and starts the S3,
// GCS and Azure servers the tests talk to; fuzz.sh (`make fuzz`) runs every fuzz
// target for a set time and the file source's model test with many seeds.
package scripts
