package job

import (
	"errors"

	"github.com/librahost/librahost/transport"
)

// cutAt takes the channel state of ranks of ep, each stopped at a capture
// point, as their cut of epoch: messages they send from now on are after
// it, and carry epoch; messages held for epoch are theirs now.
func cutAt(ep *transport.Endpoint, ranks []int, epoch uint64) ([]transport.RankState, error) {
	rs := make([]uint32, len(ranks))
	for i, r := range ranks {
		rs[i] = uint32(r)
	}
	cut, err := ep.SnapshotAt(rs, epoch)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		ep.SetEpoch(r, epoch) // messages held for epoch are theirs now
	}
	return cut, nil
}

// takeCut takes the cut of epoch of rank, stopped at a capture point,
// without waiting for the Endpoint's loop (Endpoint.CutRank): the rank
// may go on once it returns, its messages carrying epoch; the function
// returned completes the cut once the loop has. A rank in epoch already
// (it took no checkpoint of a round that failed, and was moved on) has
// its cut taken on the loop while it waits, as cutAt does.
func takeCut(ep *transport.Endpoint, rank int, epoch uint64) (func() (transport.RankState, error), error) {
	c, err := ep.CutRank(uint32(rank), epoch)
	if errors.Is(err, transport.ErrBadState) {
		cut, err := cutAt(ep, []int{rank}, epoch)
		if err != nil {
			return nil, err
		}
		return func() (transport.RankState, error) { return cut[0], nil }, nil
	}
	if err != nil {
		return nil, err
	}
	return c.State, nil
}
