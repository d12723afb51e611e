package web

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxVariants bounds the responses a cache keeps: one per pair of Accept
// and Accept-Encoding headers (a scraper and a browser ask differently);
// requests past it are served uncached.
const maxVariants = 8

// cache serves a handler's response to every request for fresh after it
// was made: a dashboard polled by many, or /metrics scraped often, costs
// one rendering per period, not one per request. While one request
// renders, the others asking for the same variant wait for it.
type cache struct {
	h     http.Handler
	fresh time.Duration

	mu       sync.Mutex
	variants map[string]*cached
}

type cached struct {
	mu     sync.Mutex // held while rendering
	at     time.Time
	code   int
	header http.Header
	body   []byte
}

func newCache(h http.Handler, fresh time.Duration) *cache {
	return &cache{h: h, fresh: fresh, variants: map[string]*cached{}}
}

func (c *cache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Accept") + "\x00" + r.Header.Get("Accept-Encoding")
	c.mu.Lock()
	v := c.variants[key]
	if v == nil && len(c.variants) < maxVariants {
		v = &cached{}
		c.variants[key] = v
	}
	c.mu.Unlock()
	if v == nil {
		c.h.ServeHTTP(w, r)
		return
	}
	v.mu.Lock()
	if v.header == nil || time.Since(v.at) >= c.fresh {
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		// The rendering must not end with the request that asked first.
		c.h.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		v.at, v.code, v.header, v.body = time.Now(), rec.code, rec.header, rec.body.Bytes()
	}
	code, header, body := v.code, v.header, v.body
	v.mu.Unlock()
	h := w.Header()
	for k, vs := range header {
		h[k] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

// recorder keeps a response.
type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}
