// fcgi_app: a FastCGI responder on Go's net/http/fcgi (stdlib only), the
// second real FastCGI implementation the gateway tests run against (the
// first is PHP-FPM). Built by the test with `go build` into its temp dir.
//
//	fcgi_app -l HOST:PORT | -u /path.sock  [-s FILE] [-a FILE]
//	  -s FILE  on each accepted connection, write the count of accepted
//	           connections to FILE (FILE.tmp + rename: never half-written),
//	           so a test can tell how many connections N requests used
//	  -a FILE  the same for FCGI_ABORT_REQUEST records received: net/http/fcgi
//	           ignores an abort once the request's STDIN is complete, so the
//	           records are counted on the wire, under the library
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
//	/drip?n=N&ms=M  N lines "drip i", one every M ms, each flushed
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

// writeCount replaces file's content with n (tmp + rename).
func writeCount(file string, n int) {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(n)+"\n"), 0o644); err == nil {
		os.Rename(tmp, file)
	}
}

// abortCounter counts FCGI_ABORT_REQUEST records across all connections.
type abortCounter struct {
	mu    sync.Mutex
	count int
	file  string
}

func (a *abortCounter) add() {
	a.mu.Lock()
	a.count++
	if a.file != "" {
		writeCount(a.file, a.count)
	}
	a.mu.Unlock()
}

// sniffConn follows the FastCGI record framing of what the library reads
// (8-byte header, content, padding) to see each record's type.
type sniffConn struct {
	net.Conn
	aborts *abortCounter
	hdr    [8]byte
	have   int // header bytes seen
	skip   int // content + padding bytes still to pass over
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if c.skip > 0 {
			k := c.skip
			if k > len(b) {
				k = len(b)
			}
			c.skip -= k
			b = b[k:]
			continue
		}
		k := copy(c.hdr[c.have:], b)
		c.have += k
		b = b[k:]
		if c.have == 8 {
			c.have = 0
			c.skip = int(c.hdr[4])<<8 | int(c.hdr[5]) + int(c.hdr[6])
			if c.hdr[1] == 2 { // FCGI_ABORT_REQUEST
				c.aborts.add()
			}
		}
	}
	return n, err
}

// countingListener numbers accepted connections and records the count.
type countingListener struct {
	net.Listener
	mu     sync.Mutex
	count  int
	file   string
	aborts *abortCounter
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.count++
	if l.file != "" {
		writeCount(l.file, l.count)
	}
	l.mu.Unlock()
	return &sniffConn{Conn: c, aborts: l.aborts}, nil
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

func drip(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
	w.Header().Set("Content-Type", "text/plain")
	for i := 1; i <= n; i++ {
		if _, err := fmt.Fprintf(w, "drip %d\n", i); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
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
	abortFile := flag.String("a", "", "file that gets the count of FCGI_ABORT_REQUEST records")
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
	cl := &countingListener{Listener: ln, file: *countFile, aborts: &abortCounter{file: *abortFile}}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/echo/", echo)
	mux.HandleFunc("/slow", slow)
	mux.HandleFunc("/big", big)
	mux.HandleFunc("/drip", drip)
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
