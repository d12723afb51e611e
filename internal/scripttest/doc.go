// Package scripttest runs golden scripts: the test format of the
// protocol cores (ckpt's testdata/proto, transport's testdata/channel).
// A script is a sequence of blocks
//
//	command arg key=value ...
//	----
//	expected output
//	<blank line>
//
// with comment lines (#) and blank lines between blocks. Run hands each
// command to the test's harness and compares what it returns with the
// expected output, or, with rewrite, writes the file again with the
// output the harness gave.
package scripttest
