package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"strconv"
	"strings"
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
// renders, the others asking for the same variant wait for it. A body of
// gzipAtLeast or more that the handler left plain is gzipped then, once,
// for the clients that accept it; each answer is the prepared headers and
// one body, written at once.
type cache struct {
	h     http.Handler
	fresh time.Duration

	mu       sync.Mutex
	variants map[variantKey]*cached
}

type variantKey struct{ accept, encoding string }

type cached struct {
	mu     sync.Mutex // held while rendering
	at     time.Time
	code   int
	header http.Header // with Content-Length
	body   []byte
}

func newCache(h http.Handler, fresh time.Duration) *cache {
	return &cache{h: h, fresh: fresh, variants: map[variantKey]*cached{}}
}

func (c *cache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := variantKey{r.Header.Get("Accept"), r.Header.Get("Accept-Encoding")}
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
		body := rec.body.Bytes()
		if rec.header.Get("Content-Encoding") == "" && acceptsGzip(key.encoding) {
			if gz := gzipped(body, gzip.DefaultCompression); gz != nil {
				body = gz
				rec.header.Set("Content-Encoding", "gzip")
			}
		}
		if rec.header.Get("Content-Encoding") != "" && !strings.Contains(rec.header.Get("Vary"), "Accept-Encoding") {
			rec.header.Add("Vary", "Accept-Encoding")
		}
		rec.header.Set("Content-Length", strconv.Itoa(len(body)))
		v.at, v.code, v.header, v.body = time.Now(), rec.code, rec.header, body
	}
	code, header, body := v.code, v.header, v.body
	v.mu.Unlock()
	copyHeader(w.Header(), header)
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
