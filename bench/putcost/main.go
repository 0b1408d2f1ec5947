// Command putcost measures what the checksums of a small PutObject cost the S3 server: it sends
// the same small objects with each combination of Content-MD5, the SDK's CRC32 header, a signed
// payload SHA-256 (x-amz-content-sha256 over plain HTTP) and the SHA-256 in the metadata, the
// combinations taking turns, and reads the server's CPU time (utime + stime of -pid, from
// /proc/<pid>/stat) before and after each.
//
//	putcost -endpoint http://127.0.0.1:9000 -bucket b -pid $(pgrep -n minio) -n 10000 -rounds 3
//
// The credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// variant is one combination of what a PUT carries.
type variant struct {
	md5, crc32, signedPayload, metadata bool
}

func (v variant) String() string {
	var parts []string
	if v.md5 {
		parts = append(parts, "Content-MD5")
	}
	if v.crc32 {
		parts = append(parts, "CRC32")
	}
	if v.signedPayload {
		parts = append(parts, "signed SHA-256")
	}
	if v.metadata {
		parts = append(parts, "sha256 metadata")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " + ")
}

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL")
	bucket := flag.String("bucket", "", "bucket")
	pid := flag.Int("pid", 0, "the S3 server's process id")
	n := flag.Int("n", 10000, "objects per combination and round")
	size := flag.Int("size", 4096, "object size in bytes")
	workers := flag.Int("workers", 16, "PUTs in flight")
	rounds := flag.Int("rounds", 3, "rounds (the combinations take turns in each)")
	flag.Parse()
	if *endpoint == "" || *bucket == "" || *pid == 0 {
		flag.Usage()
		os.Exit(2)
	}
	variants := []variant{
		{md5: true, crc32: true, signedPayload: true, metadata: true}, // the collector's PutBytes before
		{md5: true, crc32: true, metadata: true},
		{md5: true, signedPayload: true, metadata: true},
		{md5: true, metadata: true},
		{crc32: true, metadata: true},
		{md5: true},
		{metadata: true},
		{},
	}
	objects := make([][]byte, *n)
	for i := range objects {
		objects[i] = make([]byte, *size)
		_, _ = rand.Read(objects[i])
	}
	cpu := map[int][]float64{}
	wall := map[int][]float64{}
	for r := range *rounds {
		for i := range variants {
			j := (i + r) % len(variants)
			c0 := serverCPU(*pid)
			t0 := time.Now()
			if err := put(*endpoint, *bucket, fmt.Sprintf("r%d/v%d/", r, j), variants[j], objects, *workers); err != nil {
				log.Fatalf("%v: %v", variants[j], err)
			}
			w := time.Since(t0).Seconds()
			c := serverCPU(*pid) - c0
			cpu[j], wall[j] = append(cpu[j], c), append(wall[j], w)
			log.Printf("round %d %-55s server CPU %6.2f s, wall %6.2f s", r+1, variants[j], c, w)
		}
	}
	fmt.Printf("| %d PUTs of %d B, %d in flight (median of %d) | server CPU s | wall s |\n|---|---:|---:|\n", *n, *size, *workers, *rounds)
	for i, v := range variants {
		fmt.Printf("| %s | %.2f | %.2f |\n", v, median(cpu[i]), median(wall[i]))
	}
}

func put(endpoint, bucket, prefix string, v variant, objects [][]byte, workers int) error {
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  awscreds.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		// The CRC32 is set below, as the SDK would set it: the SDK computing it itself would also
		// sign the payload's SHA-256, whatever the signing middleware says.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	var opts []func(*s3.Options)
	if !v.signedPayload {
		opts = append(opts, func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		})
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data := objects[i]
				in := &s3.PutObjectInput{
					Bucket:        aws.String(bucket),
					Key:           aws.String(prefix + strconv.Itoa(i)),
					Body:          bytes.NewReader(data),
					ContentLength: aws.Int64(int64(len(data))),
					ContentType:   aws.String("application/octet-stream"),
				}
				if v.md5 {
					sum := md5.Sum(data)
					in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
				}
				if v.crc32 {
					var crc [4]byte
					binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(data))
					in.ChecksumCRC32 = aws.String(base64.StdEncoding.EncodeToString(crc[:]))
				}
				if v.metadata {
					sum := sha256.Sum256(data)
					in.Metadata = map[string]string{"sha256": hex.EncodeToString(sum[:])}
				}
				if _, err := client.PutObject(ctx, in, opts...); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range objects {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// serverCPU returns the user + system CPU seconds of process pid.
func serverCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the state on: utime is the 12th
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
