package job

import "github.com/librahost/librahost/transport"

// cutAt takes the channel state of ranks of ep, each stopped at a capture
// point, as their cut of epoch: messages they send from now on are after
// it, and carry epoch; messages held for epoch are theirs now.
func cutAt(ep *transport.Endpoint, ranks []int, epoch uint64) ([]transport.RankState, error) {
	rs := make([]uint32, len(ranks))
	for i, r := range ranks {
		rs[i] = uint32(r)
	}
	cut, err := ep.Snapshot(rs)
	if err != nil {
		return nil, err
	}
	for i, r := range rs {
		ep.SetEpoch(r, epoch)
		// Snapshot read the epoch before the cut: a rank restored from
		// it is in epoch already.
		cut[i].Epoch = epoch
	}
	return cut, nil
}
