package node

import (
	"context"
	"maps"
	"slices"
	"time"
)

// overviewDial bounds how long Overview waits for a peer host.
const overviewDial = 2 * time.Second

// Overview reports this host first, then the other hosts of the jobs it
// runs or remembers, asked for their status as `librahost status` asks
// (with this host's certificate); one that does not answer comes with why.
func (d *Daemon) Overview(ctx context.Context) []HostEntry {
	self := d.status()
	out := []HostEntry{{Addr: self.Listen, Status: &self}}
	peers := d.peerAddrs()
	if len(peers) == 0 {
		return out
	}
	sts, errs := eachHost(peers, func(a string) (HostStatus, error) { return queryOne(ctx, a, overviewDial, d.ctl) })
	return append(out, HostEntries(peers, sts, errs)...)
}

// peerAddrs lists the addresses of the other hosts of the jobs here, in
// the order of their names.
func (d *Daemon) peerAddrs() []string {
	byName := map[string]string{}
	d.mu.Lock()
	jobs := slices.AppendSeq(slices.Clone(d.ended), maps.Values(d.jobs))
	d.mu.Unlock()
	for _, j := range jobs {
		j.mu.Lock()
		for h, a := range j.peers {
			byName[h] = a
		}
		j.mu.Unlock()
	}
	names := make([]string, 0, len(byName))
	for h := range byName {
		names = append(names, h)
	}
	slices.Sort(names)
	addrs := make([]string, len(names))
	for i, h := range names {
		addrs[i] = byName[h]
	}
	return addrs
}
