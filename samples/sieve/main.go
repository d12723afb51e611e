// Command sieve counts the primes below a limit with a segmented sieve of
// Eratosthenes. It keeps every 16th prime it finds, so its memory grows as
// it goes, and prints a progress line every few segments: a long-running,
// deterministic program with no checkpoint code at all.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

const segmentSize = 1 << 21 // odd numbers per segment

func main() {
	limit := flag.Uint64("n", 400_000_000, "count the primes below `N`")
	every := flag.Int("every", 4, "print progress every `K` segments")
	flag.Parse()
	if *limit < 3 || *limit > 1<<40 || *every < 1 {
		fmt.Fprintln(os.Stderr, "sieve: -n must be in [3, 2^40] and -every at least 1")
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	sieve(*limit, *every, w)
	w.Flush()
}

// sieve counts the primes below n, reporting every `every` segments.
func sieve(n uint64, every int, out *bufio.Writer) {
	base := smallPrimes(isqrt(n) + 1)
	// next[i] is the next odd multiple of base[i] to cross off.
	next := make([]uint64, len(base))
	for i, p := range base {
		next[i] = p * p
	}
	var (
		count   uint64 = 1 // the prime 2
		last    uint64 = 2
		gap     uint64
		gapAt   uint64
		sum     uint64
		kept    []uint32 // every 16th prime, below 2^32
		segment int
	)
	seg := make([]bool, segmentSize)
	for lo := uint64(1); lo < n; lo += 2 * segmentSize {
		// seg[j] stands for lo + 2j.
		hi := min(lo+2*segmentSize, n)
		clear(seg)
		for i, p := range base {
			if p == 2 {
				continue
			}
			if next[i] >= hi {
				continue
			}
			// Work in segment indexes: an odd multiple every p slots.
			j, end := int((next[i]-lo)/2), int((hi-lo+1)/2)
			step := int(p)
			for ; j < end; j += step {
				seg[j] = true
			}
			next[i] = lo + 2*uint64(j)
		}
		for j := uint64(0); lo+2*j < hi; j++ {
			v := lo + 2*j
			if seg[j] || v == 1 {
				continue
			}
			count++
			if v-last > gap {
				gap, gapAt = v-last, last
			}
			last = v
			sum = sum*31 + v
			if count%16 == 0 && v < 1<<32 {
				kept = append(kept, uint32(v))
			}
		}
		segment++
		if segment%every == 0 {
			fmt.Fprintf(out, "segment %d: %d primes so far, last %d\n", segment, count, last)
			out.Flush()
		}
	}
	fmt.Fprintf(out, "primes below %d: %d\n", n, count)
	fmt.Fprintf(out, "largest prime %d, largest gap %d after %d\n", last, gap, gapAt)
	fmt.Fprintf(out, "kept %d primes, checksum %016x\n", len(kept), sum)
}

// smallPrimes returns the primes below n with a plain sieve.
func smallPrimes(n uint64) []uint64 {
	composite := make([]bool, n)
	var ps []uint64
	for i := uint64(2); i < n; i++ {
		if composite[i] {
			continue
		}
		ps = append(ps, i)
		for j := i * i; j < n; j += i {
			composite[j] = true
		}
	}
	return ps
}

func isqrt(n uint64) uint64 {
	r := uint64(1)
	for r*r <= n {
		r++
	}
	return r - 1
}
