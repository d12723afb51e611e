package web

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func serveHandler(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAssetsETag: the page and its files carry an ETag; a browser that
// sends it back gets a 304 without the body, and one with an old tag
// gets the file.
func TestAssetsETag(t *testing.T) {
	s := &Server{cfg: Config{}}
	h := s.Handler()
	for _, p := range []string{"/", "/static/app.js", "/static/style.css"} {
		rec := serveHandler(t, h, p)
		etag := rec.Header().Get("ETag")
		if rec.Code != http.StatusOK || etag == "" || rec.Body.Len() == 0 {
			t.Fatalf("%s: %d, ETag %q, %d bytes", p, rec.Code, etag, rec.Body.Len())
		}
		rec = serveHandler(t, h, p, "If-None-Match", `"old", `+etag)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 || rec.Header().Get("ETag") != etag {
			t.Fatalf("%s with its ETag: %d, %d bytes, ETag %q", p, rec.Code, rec.Body.Len(), rec.Header().Get("ETag"))
		}
		rec = serveHandler(t, h, p, "If-None-Match", `"old"`)
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Fatalf("%s with an old ETag: %d, %d bytes", p, rec.Code, rec.Body.Len())
		}
	}
	if rec := serveHandler(t, h, "/static/nothing.js"); rec.Code != http.StatusNotFound {
		t.Fatalf("a missing file: %d", rec.Code)
	}
}

// TestAssetsGzip: a file of gzipAtLeast bytes or more goes gzipped (made
// once) to a client that accepts gzip, with its length; plain to one that
// does not, or refuses it with q=0.
func TestAssetsGzip(t *testing.T) {
	s := &Server{cfg: Config{}}
	h := s.Handler()
	want, err := fs.ReadFile(static, "static/app.js")
	if err != nil || len(want) < gzipAtLeast {
		t.Fatalf("app.js: %d bytes, %v", len(want), err)
	}
	rec := serveHandler(t, h, "/static/app.js", "Accept-Encoding", "gzip, deflate, br")
	if rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Content-Length") != itoa(rec.Body.Len()) ||
		rec.Body.Len() >= len(want) || !bytes.Equal(gunzip(t, rec.Body.Bytes()), want) {
		t.Fatalf("gzip: %q, length %s, %d bytes", rec.Header().Get("Content-Encoding"), rec.Header().Get("Content-Length"), rec.Body.Len())
	}
	if rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip: Content-Type %q, Vary %q", rec.Header().Get("Content-Type"), rec.Header().Get("Vary"))
	}
	for _, ae := range []string{"", "identity", "gzip;q=0, br", "br, gzip; q=0"} {
		rec := serveHandler(t, h, "/static/app.js", "Accept-Encoding", ae)
		if rec.Header().Get("Content-Encoding") != "" || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("Accept-Encoding %q: %q, %d bytes", ae, rec.Header().Get("Content-Encoding"), rec.Body.Len())
		}
	}
}

// FuzzHeaderLists: a tag listed in If-None-Match is found wherever it
// stands; gzip listed first in Accept-Encoding is accepted whatever
// follows.
func FuzzHeaderLists(f *testing.F) {
	f.Add([]byte("abc"), `W/"x", *`)
	f.Add([]byte{0}, "gzip;q=0")
	f.Fuzz(func(t *testing.T, tag []byte, rest string) {
		etag := `"` + hex.EncodeToString(tag) + `"`
		if !etagMatches(rest+", "+etag, etag) || !etagMatches(etag+", "+rest, etag) {
			t.Fatalf("%s not found beside %q", etag, rest)
		}
		if !acceptsGzip("gzip, " + rest) {
			t.Fatalf("gzip not found in %q", "gzip, "+rest)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
