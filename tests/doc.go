// Package tests holds librahost's end-to-end and fault-injection tests:
// they build the librahost binary and real guests once per run, then run,
// SIGKILL and resume them as separate processes and compare their output
// with an uninterrupted run. They wait only on what a process reports (its
// k-th durable checkpoint with -v, a failpoint's line, a line of output),
// never on sleeps, so they hold on a loaded machine (proc_test.go).
//
// Every test calls t.Parallel (6 at once unless go test is given
// -parallel: TestMain) and so keeps to its own temp dirs and loopback
// ports chosen by the system, passes environment to its processes
// (never t.Setenv), and gives a job over hosts it kills none of a long
// --failure-timeout (15s; lossTimeout where it kills one). The chromium
// tests do not: Go runs them first, one at a time.
package tests
