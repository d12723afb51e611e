package job

import "github.com/librahost/librahost/transport"

// cutAt takes the channel state of ranks 0..n-1 of ep, all stopped, as
// the cut of epoch: messages sent from now on are after it, and carry
// epoch.
func cutAt(ep *transport.Endpoint, n int, epoch uint64) ([]transport.RankState, error) {
	ranks := make([]uint32, n)
	for r := range ranks {
		ranks[r] = uint32(r)
	}
	cut, err := ep.Snapshot(ranks)
	if err != nil {
		return nil, err
	}
	for r := range n {
		ep.SetEpoch(uint32(r), epoch)
		// Snapshot read the epoch before the cut: a rank restored from
		// it is in epoch already.
		cut[r].Epoch = epoch
	}
	return cut, nil
}
