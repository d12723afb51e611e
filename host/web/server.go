package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/librahost/librahost/host/node"
)

// Config configures a host's HTTP address.
type Config struct {
	Listen  string       // TCP address (host:port)
	Metrics http.Handler // served at /metrics
	// Status reports the hosts the dashboard shows (this one first).
	Status func(ctx context.Context) []node.HostEntry
	// Every is how often Status is read while a page follows /events.
	// Default 500 ms.
	Every time.Duration
	// Fresh is how long an answer of /api/status or /metrics is served
	// again to whoever asks, instead of reading the status or gathering
	// the metrics anew. Default 250 ms.
	Fresh time.Duration
}

// Report is what /api/status answers and each /events message carries.
type Report struct {
	Hosts []node.HostEntry `json:"hosts"`
}

// Server is a host's HTTP server.
type Server struct {
	cfg Config
	ln  net.Listener
	srv *http.Server
	hub *hub
}

//go:embed static
var static embed.FS

// Listen checks cfg and opens its address.
func Listen(cfg Config) (*Server, error) {
	if cfg.Every <= 0 {
		cfg.Every = 500 * time.Millisecond
	}
	if cfg.Fresh <= 0 {
		cfg.Fresh = 250 * time.Millisecond
	}
	if cfg.Status == nil {
		cfg.Status = func(context.Context) []node.HostEntry { return nil }
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: --http %s: %v (give a free host:port, e.g. 127.0.0.1:9090)", ErrListen, cfg.Listen, err)
	}
	s := &Server{cfg: cfg, ln: ln}
	s.hub = newHub(s.report, cfg.Every)
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler routes the server's paths.
func (s *Server) Handler() http.Handler {
	files, _ := fs.Sub(static, "static")
	assets, _ := loadAssets(files) // embedded: cannot fail
	mux := http.NewServeMux()
	// From memory: the page is asked for as often as the status.
	mux.Handle("GET /{$}", assets["index.html"])
	mux.HandleFunc("GET /static/{name}", func(w http.ResponseWriter, r *http.Request) {
		a := assets[r.PathValue("name")]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		a.ServeHTTP(w, r)
	})
	mux.Handle("GET /api/status", newCache(http.HandlerFunc(s.apiStatus), s.cfg.Fresh))
	mux.HandleFunc("GET /events", s.events)
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", newCache(s.cfg.Metrics, s.cfg.Fresh))
	}
	return secured(mux)
}

// secured adds headers that keep the page to its own scripts and styles.
func secured(h http.Handler) http.Handler {
	sec := http.Header{
		"Content-Security-Policy": {"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"},
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"no-referrer"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		copyHeader(w.Header(), sec)
		h.ServeHTTP(w, r)
	})
}

// report reads the status of the hosts as one JSON document.
func (s *Server) report(ctx context.Context) []byte {
	hosts := s.cfg.Status(ctx)
	if hosts == nil {
		hosts = []node.HostEntry{}
	}
	b, _ := json.Marshal(Report{Hosts: hosts})
	return b
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(s.report(r.Context()))
}

// Serve answers requests until ctx ends, then closes the server.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.srv.Close() })
	defer stop()
	go s.hub.run(ctx)
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: %v", err)
	}
	return nil
}
