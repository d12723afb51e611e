package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Config configures a host's HTTP address.
type Config struct {
	Listen  string       // TCP address (host:port)
	Metrics http.Handler // served at /metrics
}

// Server is a host's HTTP server.
type Server struct {
	cfg Config
	ln  net.Listener
	srv *http.Server
}

// Listen checks cfg and opens its address.
func Listen(cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: --http %s: %v (give a free host:port, e.g. 127.0.0.1:9090)", ErrListen, cfg.Listen, err)
	}
	s := &Server{cfg: cfg, ln: ln}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler routes the server's paths.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.cfg.Metrics)
	return mux
}

// Serve answers requests until ctx ends, then closes the server.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.srv.Close() })
	defer stop()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: %v", err)
	}
	return nil
}
