// Command wordcount counts the words of the text files in a directory by
// map/reduce: each rank maps its share of the files (file i goes to rank
// i mod n), sends each word's count to the rank that reduces it (by a
// hash of the word), reduces what it receives into its own result file,
// part-RRR.txt in -out, and rank 0 prints the totals and the most common
// words. The output and the result files are the same on every run with
// the same input and -n.
//
//	librahost run -n 1 --dir corpus:/data samples/wordcount -- -gen 64     # make an input
//	librahost run -n 4 --dir corpus:/data --checkpoint-every 1s samples/wordcount
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	libra "github.com/librahost/librahost/guest-sdk"
)

const (
	tagCounts = 1 // a mapper's counts of the words a reducer owns
	tagTop    = 2 // a reducer's totals and most common words, to rank 0
	topN      = 10
)

func main() {
	in := flag.String("in", "/data/in", "directory of the input text files (*.txt)")
	out := flag.String("out", "/data/out", "directory of the result files")
	gen := flag.Int("gen", 0, "write this many input files into -in and exit (one worker)")
	words := flag.Int("words", 20000, "words per generated file")
	hold := flag.String("hold", "", "before it ends, rank 0 waits until this `file` exists (a test holds a job open with it)")
	flag.Parse()
	if *gen > 0 {
		if libra.Size() != 1 {
			fail(fmt.Errorf("-gen runs as one worker, not %d", libra.Size()))
		}
		fail(generate(*in, *gen, *words))
		return
	}
	fail(run(*in, *out))
	if libra.Rank() == 0 && *hold != "" {
		waitFor(*hold)
	}
}

// waitFor returns once path exists.
func waitFor(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	rank, size := libra.Rank(), libra.Size()
	files, err := filepath.Glob(filepath.Join(in, "*.txt"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no *.txt files in %s (make some with -gen)", in)
	}
	slices.Sort(files)

	// Map: count the words of this rank's files.
	counts := map[string]int64{}
	for i, f := range files {
		if i%size == rank {
			if err := countFile(f, counts); err != nil {
				return err
			}
		}
	}
	// Shuffle: each word's count goes to the rank that owns the word.
	parts := make([]map[string]int64, size)
	for r := range parts {
		parts[r] = map[string]int64{}
	}
	for w, c := range counts {
		parts[owner(w, size)][w] = c
	}
	for r := range size {
		if r != rank {
			if err := libra.Send(r, tagCounts, encode(parts[r])); err != nil {
				return err
			}
		}
	}
	// Reduce: sum what every rank sent for this rank's words.
	total := parts[rank]
	for r := range size {
		if r == rank {
			continue
		}
		m, err := libra.Recv(r, tagCounts)
		if err != nil {
			return err
		}
		for w, c := range decode(m.Data) {
			total[w] += c
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeResult(filepath.Join(out, fmt.Sprintf("part-%03d.txt", rank)), total); err != nil {
		return err
	}
	// Totals and the most common words at rank 0.
	var sum int64
	for _, c := range total {
		sum += c
	}
	top := map[string]int64{"": sum, "\x00distinct": int64(len(total))}
	for _, w := range topWords(total, topN) {
		top[w] = total[w]
	}
	if rank != 0 {
		return libra.Send(0, tagTop, encode(top))
	}
	all := map[string]int64{}
	var words, distinct int64
	for r := range size {
		t := top
		if r != 0 {
			m, err := libra.Recv(r, tagTop)
			if err != nil {
				return err
			}
			t = decode(m.Data)
		}
		words += t[""]
		distinct += t["\x00distinct"]
		for w, c := range t {
			if w != "" && w[0] != 0 {
				all[w] = c
			}
		}
	}
	fmt.Printf("wordcount: %d files, %d words, %d distinct, on %d workers\n", len(files), words, distinct, size)
	for i, w := range topWords(all, topN) {
		fmt.Printf("%2d %-12s %d\n", i+1, w, all[w])
	}
	return nil
}

// countFile adds the words of file f, lower-cased, to counts.
func countFile(f string, counts map[string]int64) error {
	fh, err := os.Open(f)
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		w := strings.ToLower(strings.TrimFunc(sc.Text(), func(r rune) bool { return !unicode.IsLetter(r) }))
		if w != "" {
			counts[w]++
		}
	}
	return sc.Err()
}

func owner(w string, size int) int {
	h := fnv.New32a()
	h.Write([]byte(w))
	return int(h.Sum32() % uint32(size))
}

// encode writes counts as word length u32 | word | count u64, sorted by word.
func encode(counts map[string]int64) []byte {
	var b []byte
	for _, w := range sortedWords(counts) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(w)))
		b = append(b, w...)
		b = binary.LittleEndian.AppendUint64(b, uint64(counts[w]))
	}
	return b
}

func decode(b []byte) map[string]int64 {
	out := map[string]int64{}
	for len(b) >= 4 {
		n := int(binary.LittleEndian.Uint32(b))
		if len(b) < 4+n+8 {
			break
		}
		out[string(b[4:4+n])] = int64(binary.LittleEndian.Uint64(b[4+n:]))
		b = b[4+n+8:]
	}
	return out
}

func sortedWords(counts map[string]int64) []string {
	ws := make([]string, 0, len(counts))
	for w := range counts {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	return ws
}

// topWords returns the n most common words, ties broken by the word.
func topWords(counts map[string]int64, n int) []string {
	ws := sortedWords(counts)
	slices.SortStableFunc(ws, func(a, b string) int {
		switch ca, cb := counts[a], counts[b]; {
		case ca > cb:
			return -1
		case ca < cb:
			return 1
		}
		return 0
	})
	return ws[:min(n, len(ws))]
}

func writeResult(path string, counts map[string]int64) error {
	var b bytes.Buffer
	for _, w := range sortedWords(counts) {
		fmt.Fprintf(&b, "%s %d\n", w, counts[w])
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// generate writes n text files of about words words each, drawn from a
// Zipf distribution over a made-up vocabulary: the same files every time.
func generate(dir string, n, words int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	vocab := make([]string, 5000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range vocab {
		var sb strings.Builder
		for range 2 + rng.IntN(7) {
			sb.WriteByte(byte('a' + rng.IntN(26)))
		}
		vocab[i] = sb.String()
	}
	for f := range n {
		rng := rand.New(rand.NewPCG(uint64(f), 3))
		z := rand.NewZipf(rng, 1.1, 2, uint64(len(vocab)-1))
		var b bytes.Buffer
		for i := range words {
			b.WriteString(vocab[z.Uint64()])
			if i%12 == 11 {
				b.WriteString(".\n")
			} else {
				b.WriteByte(' ')
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("text-%04d.txt", f)), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
