package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/librahost/librahost/host"
)

func cmdCluster(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "init" && args[0] != "add-host") {
		fmt.Fprintln(stderr, "usage: librahost cluster init DIR --hosts a,b=10.0.0.2,c | librahost cluster add-host DIR NAME[=addr,...]")
		return errUsage
	}
	sub := args[0]
	fs := newFlags("cluster "+sub, stderr)
	hosts := fs.String("hosts", "", "hosts of the cluster: name[=addr1,addr2] separated by spaces or ;")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return errors.New("the cluster directory is required")
	}
	dir, rest := fs.Arg(0), fs.Args()[1:]
	switch sub {
	case "init":
		list := strings.FieldsFunc(*hosts, func(r rune) bool { return r == ' ' || r == ';' })
		if len(list) == 0 {
			return errors.New("--hosts is required")
		}
		if err := host.InitCluster(dir, list); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cluster CA and %d host certificates in %s\n", len(list), dir)
	case "add-host":
		if len(rest) < 1 {
			return errors.New("the host name is required")
		}
		name, addrs, _ := strings.Cut(rest[0], "=")
		var as []string
		if addrs != "" {
			as = strings.Split(addrs, ",")
		}
		if err := host.AddClusterHost(dir, name, as...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "certificate for %s in %s\n", name, dir)
	}
	return nil
}
