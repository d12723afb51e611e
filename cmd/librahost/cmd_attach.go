package main

import "io"

// cmdAttach follows a job's output from its start (as far as its hosts
// keep it), or from now, until the job has ended on every host, and
// exits with the job's exit code: a job submitted with --detach is
// watched as if submitted from here. Ctrl-C leaves the job running.
func cmdAttach(args []string, stdout, stderr io.Writer) error {
	return jobOutput("attach", args, stdout, stderr)
}
