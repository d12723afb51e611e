// Package tests holds librahost's end-to-end and fault-injection tests:
// they build the librahost binary and real guests once per run, then run,
// SIGKILL and resume them as separate processes and compare their output
// with an uninterrupted run.
package tests
