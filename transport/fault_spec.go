package transport

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// FaultsEnv names the environment variable that switches fault injection
// on for end-to-end runs, in ParseFaults's syntax.
const FaultsEnv = "LIBRAHOST_FAULTS"

// ParseFaults parses a comma-separated fault spec such as
//
//	drop=0.2,dup=0.1,reorder=0.1,delay=5ms,jitter=2ms,seed=7
//
// Keys: drop, dup, reorder (probabilities in [0, 1]), delay, jitter (Go
// durations), seed (an unsigned integer). Absent keys are zero; an empty
// spec is no faults.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return Faults{}, fmt.Errorf("%w: %q is not key=value", ErrFaultSpec, item)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var err error
		switch k {
		case "drop":
			f.Drop, err = parseProb(v)
		case "dup", "duplicate":
			f.Duplicate, err = parseProb(v)
		case "reorder":
			f.Reorder, err = parseProb(v)
		case "delay":
			f.Delay, err = parseDur(v)
		case "jitter":
			f.Jitter, err = parseDur(v)
		case "seed":
			f.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			return Faults{}, fmt.Errorf("%w: unknown key %q (want drop, dup, reorder, delay, jitter, seed)", ErrFaultSpec, k)
		}
		if err != nil {
			return Faults{}, fmt.Errorf("%w: %s=%s: %v", ErrFaultSpec, k, v, err)
		}
	}
	return f, nil
}

// FaultsFromEnv parses $LIBRAHOST_FAULTS; ok is false when it is unset or
// empty.
func FaultsFromEnv() (f Faults, ok bool, err error) {
	spec := os.Getenv(FaultsEnv)
	if strings.TrimSpace(spec) == "" {
		return Faults{}, false, nil
	}
	f, err = ParseFaults(spec)
	if err != nil {
		return Faults{}, false, fmt.Errorf("%s: %w", FaultsEnv, err)
	}
	return f, true, nil
}

// String returns f in ParseFaults's syntax.
func (f Faults) String() string {
	return fmt.Sprintf("drop=%g,dup=%g,reorder=%g,delay=%s,jitter=%s,seed=%d",
		f.Drop, f.Duplicate, f.Reorder, f.Delay, f.Jitter, f.Seed)
}

func parseProb(v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number")
	}
	if !(p >= 0 && p <= 1) {
		return 0, fmt.Errorf("probability outside [0, 1]")
	}
	return p, nil
}

func parseDur(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not a duration")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	return d, nil
}
