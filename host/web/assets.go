package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// gzipAtLeast is the smallest body worth compressing: below it the bytes
// saved do not pay for the client's inflating.
const gzipAtLeast = 1024

// asset is one file of static/, ready to be sent: its bytes, plain and
// gzipped (nil when not smaller), and the headers of each, made once.
type asset struct {
	etag        string
	plain, gz   []byte
	hPlain, hGz http.Header
	notModified http.Header
}

// loadAssets reads static/ into memory. The dashboard's files are read
// with every page load, / as often as the status: each answer is then a
// copy of a few prepared headers and one write, or a 304 when the
// browser has the file already (its ETag).
func loadAssets(files fs.FS) (map[string]*asset, error) {
	out := map[string]*asset{}
	err := fs.WalkDir(files, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		out[p] = newAsset(p, b)
		return nil
	})
	return out, err
}

func newAsset(name string, b []byte) *asset {
	sum := sha256.Sum256(b)
	a := &asset{etag: `"` + hex.EncodeToString(sum[:8]) + `"`, plain: b}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = http.DetectContentType(b)
	}
	common := func() http.Header {
		return http.Header{
			"Content-Type":  {ctype},
			"Etag":          {a.etag},
			"Cache-Control": {"no-cache"}, // asks again, and gets a 304 while unchanged
			"Vary":          {"Accept-Encoding"},
		}
	}
	a.notModified = common()
	delete(a.notModified, "Content-Type")
	a.hPlain = common()
	a.hPlain["Content-Length"] = []string{strconv.Itoa(len(b))}
	if gz := gzipped(b, gzip.BestCompression); gz != nil {
		a.gz = gz
		a.hGz = common()
		a.hGz["Content-Encoding"] = []string{"gzip"}
		a.hGz["Content-Length"] = []string{strconv.Itoa(len(gz))}
	}
	return a
}

// gzipped is b compressed at level, or nil when that is not worth it.
func gzipped(b []byte, level int) []byte {
	if len(b) < gzipAtLeast {
		return nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, level)
	zw.Write(b)
	zw.Close()
	if buf.Len() >= len(b) {
		return nil
	}
	return buf.Bytes()
}

func (a *asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, a.etag) {
		copyHeader(h, a.notModified)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if a.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		copyHeader(h, a.hGz)
		w.Write(a.gz)
		return
	}
	copyHeader(h, a.hPlain)
	w.Write(a.plain)
}

// copyHeader sets src's values in dst. The values are shared, not copied:
// nothing changes a header's value slice once it is sent.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
}

// etagMatches reads an If-None-Match list (weak tags compare as strong
// ones, as RFC 9110 has for this header).
func etagMatches(list, etag string) bool {
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) listed, and
// not with q=0.
func acceptsGzip(ae string) bool {
	for t := range strings.SplitSeq(ae, ",") {
		name, params, _ := strings.Cut(t, ";")
		name = strings.TrimSpace(name)
		if name != "gzip" && name != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		if q, ok := strings.CutPrefix(q, "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}
