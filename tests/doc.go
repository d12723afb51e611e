// Package tests holds librahost's end-to-end and fault-injection tests:
// they build the librahost binary and real guests once per run, then run,
// SIGKILL and resume them as separate processes and compare their output
// with an uninterrupted run. They wait only on what a process reports (its
// k-th durable checkpoint with -v, a failpoint's line, a line of output),
// never on sleeps, so they hold on a loaded machine (proc_test.go).
package tests
