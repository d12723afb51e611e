package jobsim

import (
	"flag"
	"testing"
)

var (
	seeds = flag.Int("seeds", 500, "number of seeds TestSimulation runs")
	seed  = flag.Int64("seed", -1, "run only this seed")
)

func TestSimulation(t *testing.T) {
	first, n := uint64(1), uint64(*seeds)
	if *seed >= 0 {
		first, n = uint64(*seed), 1
	}
	var finished, stopped, recoveries, resumes, crashed, events int
	for s := first; s < first+n; s++ {
		cfg := Config{Seed: s, Hosts: 3 + int(s%2), Replicas: 1 + int(s/2%2), Faults: s%3 != 0,
			Crashes: int(s % 4), Coordinator: s%7 < 3, DiskFailures: s%5 == 0}
		res, err := Run(cfg)
		if err != nil {
			t.Fatalf("%v\nreplay: go test ./host/jobsim -run TestSimulation -seed %d -v", err, s)
		}
		if res.Stopped != "" {
			stopped++
		} else {
			finished++
		}
		recoveries += res.Recoveries
		resumes += res.Resumes
		crashed += res.Crashed
		events += res.Events
		if *seed >= 0 {
			t.Logf("seed %d: %+v", s, res)
		}
	}
	t.Logf("%d seeds: %d finished, %d stopped (every copy of a checkpoint lost), %d host crashes, %d recoveries, %d resumes after the coordinator's host died, %d events",
		n, finished, stopped, crashed, recoveries, resumes, events)
	if *seed < 0 && finished == 0 {
		t.Fatal("no simulated job finished")
	}
}

// TestSimulationWithoutFailures: with nothing going wrong, the job
// finishes with checkpoints committed.
func TestSimulationWithoutFailures(t *testing.T) {
	res, err := Run(Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "" || res.Committed == 0 || res.Recoveries != 0 {
		t.Fatalf("%+v", res)
	}
}
