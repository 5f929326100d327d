// http_app: a keep-alive HTTP/1.1 upstream on Go's net/http (stdlib only),
// the "real app" backend of the bench scenario proxy_go (issue 9, scenario 6).
// Its cost is the Go runtime's, not near zero like http_hello.c: the scenario
// shows what a front server adds in front of a typical application server.
//
//	http_app -l HOST:PORT
//
// Every path answers "hello" (text/plain, Content-Length 5).
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("l", "", "HOST:PORT to listen on")
	flag.Parse()
	if *listen == "" {
		log.Fatal("need -l HOST:PORT")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	})
	log.Fatal(http.ListenAndServe(*listen, h))
}
