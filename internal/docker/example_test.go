package docker_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mlsidecar/collector/internal/docker"
)

// A resource sampler's use: one sample of a container's usage.
func ExampleClient_Stats() {
	c := docker.New("") // /var/run/docker.sock
	s, err := c.Stats(context.Background(), "job")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cpu %.0f%% (of one core), memory %d of %d bytes, shm %d bytes\n",
		s.CPUPercent(), s.Memory.WorkingSet(), s.Memory.Limit, s.Memory.Stat["shmem"])
}
