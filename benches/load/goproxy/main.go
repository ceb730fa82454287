// Contestant: Go's net/http/httputil.ReverseProxy setting the header, the
// floor of the Go credential proxies (Secretless Broker, Fly's tokenizer,
// aws-sigv4-proxy are built on it). Standard library only.
//
//	goproxy LISTEN UPSTREAM_URL HEADER_VALUE [CA_PEM]
//
// It sets Authorization to HEADER_VALUE on every request and forwards over a
// keep-alive pool of 64 idle connections (as nginx's `keepalive 64`); with an
// https:// upstream it trusts CA_PEM and resumes TLS sessions.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 4 {
		log.Fatal("usage: goproxy LISTEN UPSTREAM_URL HEADER_VALUE [CA_PEM]")
	}
	listen, value := os.Args[1], os.Args[3]
	upstream, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	tlsConfig := &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	if len(os.Args) > 4 {
		pem, err := os.ReadFile(os.Args[4])
		if err != nil {
			log.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			log.Fatal("no certificate in ", os.Args[4])
		}
		tlsConfig.RootCAs = roots
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	director := proxy.Director
	proxy.Director = func(r *http.Request) {
		director(r)
		r.Header.Set("Authorization", value)
	}
	proxy.Transport = transport
	server := &http.Server{Addr: listen, Handler: proxy, ReadHeaderTimeout: 30 * time.Second}
	log.Fatal(server.ListenAndServe())
}
