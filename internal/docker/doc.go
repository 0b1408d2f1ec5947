// Package docker is a small client of the Docker Engine API over its unix
// socket (/var/run/docker.sock by default), written on net/http alone: a
// container's state (Inspect), the container of a compose service (Find:
// by compose's labels, in the caller's own project), its log as the engine
// streams it (Logs, stdout and stderr demultiplexed, each message stamped
// by the engine) and one sample of its resource usage (Stats). It serves
// the Docker log source (logs) and the resource sampler (resources) when
// the docker plugin is on; it owns nothing else of the engine's API.
//
// The client speaks the unversioned API paths, which every engine since API
// 1.24 (Docker 1.12) answers with its own current version.
package docker
