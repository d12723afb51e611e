package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/librahost/librahost/host/node"
)

// submitDetached hands the job to its first host and prints its ID alone
// on stdout (for scripts), and on stderr how to follow it.
func submitDetached(cfg node.SubmitConfig, stdout, stderr io.Writer) error {
	id, err := node.SubmitDetached(context.Background(), cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, id)
	hosts := strings.Join(cfg.Hosts, ",")
	fmt.Fprintf(stderr, "librahost submit: job %s started, detached: `librahost attach %s --hosts %s` follows it, `librahost cancel --job %s --hosts %s` stops it\n",
		id, id, hosts, id, hosts)
	return nil
}
