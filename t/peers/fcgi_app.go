// fcgi_app: a FastCGI responder on Go's net/http/fcgi (stdlib only), the
// second real FastCGI implementation the gateway tests run against (the
// first is PHP-FPM). Built by the test with `go build` into its temp dir.
//
//	fcgi_app -l HOST:PORT | -u /path.sock  [-s FILE]
//	  -s FILE  on each accepted connection, write the count of accepted
//	           connections to FILE (FILE.tmp + rename: never half-written),
//	           so a test can tell how many connections N requests used
//
// Endpoints:
//
//	/echo...      the FastCGI params net/http/fcgi leaves in ProcessEnv as
//	              "PARAM name=value" lines (sorted), then METHOD, URI, QUERY,
//	              HOST, REMOTE, CONTENT_LENGTH as net/http rebuilt them from
//	              the standard params, BODY_LEN and BODY_MD5 of the body
//	/slow?ms=N    sleeps N ms, then "slow done"
//	/big?mib=N    N MiB: 64 KiB blocks, block i = (chr(65+i%26) "0123456") x 8192
//	/conn         "conn=<n>": connections accepted so far
//	anything else "hello"
package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type connKey struct{}

// countingListener numbers accepted connections and records the count.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	count int
	file  string
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.count++
	if l.file != "" {
		tmp := l.file + ".tmp"
		if werr := os.WriteFile(tmp, []byte(strconv.Itoa(l.count)+"\n"), 0o644); werr == nil {
			os.Rename(tmp, l.file)
		}
	}
	l.mu.Unlock()
	return c, nil
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), 500)
		return
	}
	env := fcgi.ProcessEnv(r)
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/plain")
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "PARAM %s=%s\n", k, env[k])
	}
	for _, k := range []string{"Content-Type", "X-Test"} {
		fmt.Fprintf(&b, "HEADER %s=%s\n", k, r.Header.Get(k))
	}
	sum := md5.Sum(body)
	// what net/http/fcgi rebuilt from the standard params (it keeps them
	// out of ProcessEnv)
	fmt.Fprintf(&b, "METHOD=%s\nURI=%s\nQUERY=%s\nHOST=%s\nREMOTE=%s\nCONTENT_LENGTH=%d\n",
		r.Method, r.URL.RequestURI(), r.URL.RawQuery, r.Host, r.RemoteAddr, r.ContentLength)
	fmt.Fprintf(&b, "BODY_LEN=%d\nBODY_MD5=%s\n", len(body), hex.EncodeToString(sum[:]))
	io.WriteString(w, b.String())
}

func slow(w http.ResponseWriter, r *http.Request) {
	ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "slow done\n")
}

func big(w http.ResponseWriter, r *http.Request) {
	mib, _ := strconv.Atoi(r.URL.Query().Get("mib"))
	if mib <= 0 {
		mib = 1
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	for i := 0; i < mib*16; i++ {
		block := strings.Repeat(string(rune(65+i%26))+"0123456", 8192)
		if _, err := io.WriteString(w, block); err != nil {
			return
		}
	}
}

func main() {
	listen := flag.String("l", "", "HOST:PORT to listen on")
	unix := flag.String("u", "", "unix socket path to listen on")
	countFile := flag.String("s", "", "file that gets the accepted-connection count")
	flag.Parse()
	var ln net.Listener
	var err error
	switch {
	case *unix != "":
		os.Remove(*unix)
		ln, err = net.Listen("unix", *unix)
	case *listen != "":
		ln, err = net.Listen("tcp", *listen)
	default:
		log.Fatal("need -l HOST:PORT or -u PATH")
	}
	if err != nil {
		log.Fatal(err)
	}
	cl := &countingListener{Listener: ln, file: *countFile}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/echo/", echo)
	mux.HandleFunc("/slow", slow)
	mux.HandleFunc("/big", big)
	mux.HandleFunc("/conn", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		n, _ := r.Context().Value(connKey{}).(int)
		fmt.Fprintf(w, "conn=%d\n", n)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	})
	// net/http/fcgi serves each accepted connection on its own goroutine;
	// the connection number is not visible to handlers, so /conn reports
	// the latest accept (enough for a single-client test)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl.mu.Lock()
		n := cl.count
		cl.mu.Unlock()
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), connKey{}, n)))
	})
	log.Fatal(fcgi.Serve(cl, handler))
}
