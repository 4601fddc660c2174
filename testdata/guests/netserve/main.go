// Command netserve is a server for published-port tests and benchmarks.
// "netserve http PORT" serves HTTP on every address: /peer answers with
// the client's address as the server sees it, any other path with a
// small fixed page. "netserve udpecho PORT" answers each datagram with
// its sender's address and the datagram. Each prints "ready" once it
// listens.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// page is the fixed page: small, as a static file a benchmark fetches.
var page = strings.Repeat("kvmbox published port\n", 8)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: netserve http|udpecho PORT")
		os.Exit(2)
	}
	addr := ":" + os.Args[2]
	var err error
	switch os.Args[1] {
	case "http":
		err = serveHTTP(addr)
	case "udpecho":
		err = echoUDP(addr)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func serveHTTP(addr string) error {
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	http.HandleFunc("/peer", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, r.RemoteAddr)
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page)
	})
	return http.Serve(l, nil)
}

func echoUDP(addr string) error {
	c, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(fmt.Appendf(nil, "%s %s", from, buf[:n]), from); err != nil {
			return err
		}
	}
}
