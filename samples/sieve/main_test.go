package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestSieve(t *testing.T) {
	tests := []struct {
		n     uint64
		every int
		want  string
	}{
		{10, 1, "segment 1: 4 primes so far, last 7\nprimes below 10: 4\n"},
		{3, 1, "segment 1: 1 primes so far, last 2\nprimes below 3: 1\n"},
		{100, 5, "primes below 100: 25\nlargest prime 97, largest gap 8 after 89\n"},
		{10_000_000, 1, "segment 1: 295947 primes so far, last 4194301\nsegment 2: 564163 primes so far, last 8388593\n" +
			"segment 3: 664579 primes so far, last 9999991\nprimes below 10000000: 664579\n" +
			"largest prime 9999991, largest gap 154 after 4652353\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		w := bufio.NewWriter(&b)
		sieve(tt.n, tt.every, w)
		w.Flush()
		if !strings.HasPrefix(b.String(), tt.want) {
			t.Errorf("sieve(%d):\n%s\nwant prefix\n%s", tt.n, b.String(), tt.want)
		}
	}
}
