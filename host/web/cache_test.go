package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestCache: within Fresh every request gets the first one's answer
// (status, headers, body) without the handler running again; after it,
// the handler runs anew; each Accept and Accept-Encoding pair has its own
// answer, and past maxVariants pairs requests are served uncached.
func TestCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		h := newCache(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.Header().Set("Content-Type", "text/x-"+r.Header.Get("Accept"))
			w.WriteHeader(http.StatusTeapot)
			fmt.Fprintf(w, "answer %d", calls)
		}), 250*time.Millisecond)
		get := func(accept string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.Header.Set("Accept", accept)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		check := func(accept, want string) {
			t.Helper()
			rec := get(accept)
			if rec.Code != http.StatusTeapot || rec.Header().Get("Content-Type") != "text/x-"+accept || rec.Body.String() != want {
				t.Fatalf("Accept %s: %d %q %q, want %q", accept, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), want)
			}
		}
		check("a", "answer 1")
		time.Sleep(249 * time.Millisecond)
		check("a", "answer 1")
		check("b", "answer 2")
		time.Sleep(time.Millisecond)
		check("a", "answer 3")
		check("b", "answer 2")
		for i := range maxVariants - 2 {
			get(fmt.Sprint("v", i))
		}
		n := calls
		check("more", fmt.Sprintf("answer %d", n+1))
		check("more", fmt.Sprintf("answer %d", n+2))
	})
}

// TestCacheGzip: a plain body of gzipAtLeast bytes or more is gzipped once
// for the clients that accept gzip, with its length and Vary; a smaller
// one, one the handler encoded itself, or one for a client without gzip
// goes as the handler wrote it.
func TestCacheGzip(t *testing.T) {
	big := strings.Repeat("librahost_metric 1\n", 200)
	for _, c := range []struct {
		name, body, encoding, acceptEncoding string
		gzipped                              bool
	}{
		{"large", big, "", "gzip", true},
		{"small", "ok\n", "", "gzip", false},
		{"encoded", big, "br", "gzip", false},
		{"no gzip", big, "", "identity", false},
	} {
		calls := 0
		h := newCache(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			if c.encoding != "" {
				w.Header().Set("Content-Encoding", c.encoding)
			}
			io.WriteString(w, c.body)
		}), time.Hour)
		for range 2 {
			rec := serveHandler(t, h, "/metrics", "Accept-Encoding", c.acceptEncoding)
			if rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
				t.Fatalf("%s: Content-Length %s, %d bytes", c.name, rec.Header().Get("Content-Length"), rec.Body.Len())
			}
			got := rec.Body.Bytes()
			if c.gzipped {
				if rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Vary") != "Accept-Encoding" || len(got) >= len(c.body) {
					t.Fatalf("%s: Content-Encoding %q, Vary %q, %d bytes", c.name, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"), len(got))
				}
				got = gunzip(t, got)
			} else if rec.Header().Get("Content-Encoding") != c.encoding {
				t.Fatalf("%s: Content-Encoding %q, want %q", c.name, rec.Header().Get("Content-Encoding"), c.encoding)
			}
			if string(got) != c.body {
				t.Fatalf("%s: body %.40q…", c.name, got)
			}
		}
		if calls != 1 {
			t.Fatalf("%s: rendered %d times", c.name, calls)
		}
	}
}
