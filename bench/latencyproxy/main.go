// Command latencyproxy is a TCP proxy that holds every byte for a fixed delay in each direction, for
// the benchmarks in bench/: it puts a store one network hop away (a round trip of twice -delay) on a
// machine whose kernel has no netem. Bandwidth is not limited: the bytes of a connection flow as
// they come, each chunk sent on -delay after it was read, in order.
//
//	latencyproxy -listen 127.0.0.1:7575 -target 127.0.0.1:9000 -delay 10ms
//
// A connection's setup is delayed too: the proxy dials the target -delay after it accepted the
// client, so the first answer comes a round trip later, as from a server that far away.
package main

import (
	"bytes"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7575", "address to listen on")
	target := flag.String("target", "", "address to forward to (host:port)")
	delay := flag.Duration("delay", 10*time.Millisecond, "delay added in each direction")
	flag.Parse()
	if *target == "" {
		flag.Usage()
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ln.Close()
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c, *target, *delay)
	}
}

func serve(client net.Conn, target string, delay time.Duration) {
	defer client.Close()
	time.Sleep(delay)
	server, err := net.Dial("tcp", target)
	if err != nil {
		log.Print(err)
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { pipe(server, client, delay); done <- struct{}{} }()
	go func() { pipe(client, server, delay); done <- struct{}{} }()
	<-done // one side closed: close both, which ends the other copy
}

// chunk is what one read got, and when.
type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies src to dst, each chunk written delay after it was read. One
// read buffer, and each chunk a copy of the bytes read: the proxy stands for
// a hop that costs the host no CPU, and a tool with many requests in flight
// competes with it for the cores.
func pipe(dst, src net.Conn, delay time.Duration) {
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{bytes.Clone(buf[:n]), time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at.Add(delay)))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	for range q { // drain, so the reader ends
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite() // pass the end on: the other side may still answer
	}
}
