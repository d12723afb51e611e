package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
