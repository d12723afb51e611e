// Package transport carries guest messages between librahost workers.
//
// Layers, from the guest outwards:
//
//   - The channel cores (channel_sender.go, channel_receiver.go): one
//     Sender and one Receiver per direction src→dst. They number messages,
//     deliver in order, drop duplicates, ack cumulatively and retransmit
//     from a sender log that only Stable shortens. They are deterministic
//     state machines: no goroutines, no clock (time is an argument), no
//     randomness and no I/O, in the style of etcd raft's Ready.
//   - The frame format (frame.go): a versioned binary encoding of DATA,
//     ACK, HELLO and CONTROL frames; several frames travel in one buffer.
//     An ACK carries, besides the cumulative ack, how far a committed
//     checkpoint of the receiver covers the channel: stability crosses
//     hosts on the links' own acks (mux_stable.go), never in frames of
//     its own while a channel is in use. It also says which of the
//     receiver's cuts will hold what it acks (Cut: the epoch the receiver
//     was in, plus one), so that a sender's checkpoint logs only the
//     messages in flight at the cut, not every one sent since the last
//     commit (Sender.CutState).
//   - Links (link.go): a Link carries buffers of encoded frames to one peer
//     host. Pipe (inproc.go) is an in-memory pair; the QUIC driver is
//     another. WithFaults (fault.go) wraps any Link with seeded loss,
//     duplication, reordering, delay and partitions.
//   - The Endpoint (mux.go): for one host, owns the cores of every channel
//     that starts or ends at a local worker, routes frames to links by the
//     destination's host, coalesces small frames, runs the retransmit timer
//     and fills per-worker inboxes. One goroutine per Endpoint touches the
//     cores. Counters (mux_counters.go) reads its totals of frames and
//     bytes to and from peer hosts, for metrics. Without StableOnAck a
//     sender log shrinks only when StableCut reports a committed cut, on
//     this host or (through the acks) on the receiver's. Each link's HELLO
//     names the job's incarnation: an Endpoint refuses links of an older
//     one (a host declared dead that came back) and of a newer one; a
//     recovery makes a new Endpoint of the new incarnation and restores
//     it from the committed cut, so no frame needs an incarnation of its
//     own (a link, and every buffer on it, belongs to one Endpoint).
//     SetRoute (mux_route.go) moves ranks between hosts: senders send
//     their logs again to a moved rank's new host, where its restored
//     receivers drop what they had. Without StableOnAck the sender logs
//     are bounded (mux_loglimit.go): past MaxLogBytes the host is told
//     (OnLogFull) so that it forces a checkpoint, and sends wait for its
//     commit, or fail with ErrLogFull if no checkpoint can come; an
//     ended rank's inbox drops what reaches it (Ended).
//
// A host's share of a job over several hosts uses an Endpoint so:
//
//	start      NewEndpoint with Route from the placement, Incarnation, and
//	           OnLogFull asking for a checkpoint; AddLink to each peer host
//	epoch e    CutRank of each local rank when it captures e, which does
//	           not wait for the loop: the rank goes on, and Cut.State
//	           completes its state later (it goes into the rank's
//	           checkpoint); once e is committed (ckpt's Release),
//	           StableCut with the local ranks' states of e
//	ended      Ended(rank) when a rank's program ends; Snapshot is its cut
//	recovery   Close; a new Endpoint of the new incarnation and placement;
//	           Restore and StableCut with the committed states of the ranks
//	           placed here; AddLink to each live peer
//	moving     without a recovery: Snapshot the rank on its old host,
//	           SetRoute on every host, Restore it on the new one
//
// transport never imports host, ckpt or wasi: host maps between their types.
package transport
