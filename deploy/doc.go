// Package deploy holds the tests of the collector's packaging and deployment
// files, which live beside it and at the repository's root: the Dockerfile,
// the Makefile's build target, docker-compose.yml with its files in
// deploy/compose/, and the Kubernetes manifests in deploy/kubernetes/ (the
// Job with the collector as a native sidecar, the wrapper form, the RBAC of
// the Kubernetes log source, the configuration and the store's Secret).
//
// The tests check the files' wiring against the collector as it is built:
// they build the binary with `make build`, take its flags and COLLECTOR_*
// variables from its --help, parse each container's arguments with the
// binary's own flag parser, and read the plugins and connections files with
// the collector's own loaders. The compose file is loaded with the
// compose-spec loader and the manifests are decoded strictly into k8s.io/api
// types. No Docker engine or cluster is needed. The package has no code of
// its own beyond the tests: the collector binary never imports it, nor the
// compose and Kubernetes modules the tests use.
package deploy
