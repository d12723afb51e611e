package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/replica"
	"github.com/librahost/librahost/transport"
)

// replicaALPN is the TLS protocol of the connections that carry a rank's
// checkpoint to another host of its job (host/replica), on the hosts'
// own sockets and cluster TLS. The stream starts with the job's ID:
// length u8 | ID; then host/replica's frames.
const replicaALPN = "librahost-replica/1"

// replicaTimeout bounds one replica's dial and handshake.
const replicaTimeout = 10 * time.Second

func replicaQUIC() *quic.Config {
	return &quic.Config{HandshakeIdleTimeout: replicaTimeout, MaxIdleTimeout: 30 * time.Second, MaxIncomingStreams: 1}
}

// serveReplica takes one replica that another host of a job sends into
// the job's store here. The host shutting down (ctx) closes the
// connection: a source that died mid-way would hold it for the idle
// timeout.
func (d *Daemon) serveReplica(ctx context.Context, conn *quic.Conn) {
	defer d.wg.Done()
	defer context.AfterFunc(ctx, func() { conn.CloseWithError(1, "the host is shutting down") })()
	peer, err := transport.PeerHostID(conn.ConnectionState().TLS)
	if err != nil {
		conn.CloseWithError(1, "no host certificate")
		return
	}
	ctx, cancel := context.WithTimeout(conn.Context(), replicaTimeout)
	str, err := conn.AcceptStream(ctx)
	cancel()
	if err != nil {
		conn.CloseWithError(1, "no stream")
		return
	}
	var n [1]byte
	id := make([]byte, 0, 128)
	if _, err = io.ReadFull(str, n[:]); err == nil {
		id = id[:n[0]&^migrationFlag]
		_, err = io.ReadFull(str, id)
	}
	if err != nil {
		conn.CloseWithError(1, "bad replica header")
		return
	}
	j := d.findJob(string(id))
	var store *ckpt.Store
	if j != nil {
		store = j.ckptStore()
	}
	if store == nil || !j.inJob(string(peer)) {
		d.logf("replica of job %s from host %s: no such checkpointed job here: refused", id, peer)
		conn.CloseWithError(1, "no such job here")
		return
	}
	migrating, rank, gen := n[0]&migrationFlag != 0, 0, uint64(0)
	if migrating {
		var ok bool
		if rank, gen, ok = d.acceptMigration(j, store, str, string(peer)); !ok {
			str.Close()
			<-conn.Context().Done()
			return
		}
	}
	var staged func()
	if migrating {
		// The rank's worker is made here, or brought up to the state
		// received, while it still runs at its source, before the source
		// hears that the round is here: so the source stops the rank only
		// once the rounds it counts on are in that worker, and the last
		// state does not wait here for a round to be written into it.
		staged = func() {
			if _, share := d.findShare(j.id); share != nil {
				share.MigrationIn(rank, gen)
			}
		}
	}
	if err := replica.ServeThen(countedStream{rw: str, js: d.metrics.Jobs()}, store, staged); err != nil {
		d.logf("job %s: replica from host %s: %v", j.id, peer, err)
	}
	str.Close()
	// The source closes the connection once it has read the answer.
	<-conn.Context().Done()
}

// replicator sends the checkpoints of a job's ranks run here to the
// hosts holding their replicas.
type replicator struct {
	d     *Daemon
	j     *job
	hosts []string // by ckpt.HostID
	addrs map[string]string
	tls   *tls.Config
	mu    sync.Mutex
	base  map[[2]int]uint64 // (rank, host) → newest epoch replicated there
	// dialed: migration streams opened ahead of a rank's last state, by
	// target (daemon_migrate.go).
	dialed map[ckpt.HostID]*dialAhead
}

// replicate copies rank's checkpoint of epoch to host to, and returns
// once it is durable there.
func (r *replicator) replicate(rank int, epoch uint64, to ckpt.HostID) error {
	return sendAgain(func() error { return r.replicateOnce(rank, epoch, to) })
}

// sendAgain runs send, and once more if the replica host refused only
// because a chunk it held went meanwhile (replica.ErrAgain): the second
// attempt sends that chunk.
func sendAgain(send func() error) error {
	err := send()
	if errors.Is(err, replica.ErrAgain) {
		err = send()
	}
	return err
}

func (r *replicator) replicateOnce(rank int, epoch uint64, to ckpt.HostID) error {
	conn, str, err := r.open(to, 0)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	k := [2]int{rank, int(to)}
	r.mu.Lock()
	base := r.base[k]
	r.mu.Unlock()
	store := r.j.ckptStore()
	if store == nil {
		return errors.New("the job's store is closed")
	}
	if _, err := replica.Send(countedStream{rw: str, js: r.d.metrics.Jobs()}, store, ckpt.Key{Job: shareKeyJob, Worker: uint32(rank)}, epoch, replica.Options{Base: base}); err != nil {
		return err
	}
	r.mu.Lock()
	r.base[k] = max(r.base[k], epoch)
	r.mu.Unlock()
	return nil
}

// open dials host to and opens the stream of a replica of the job, its
// header's first byte or'ed with flags; the caller closes conn.
func (r *replicator) open(to ckpt.HostID, flags byte) (*quic.Conn, *quic.Stream, error) {
	name := r.hosts[to]
	addr := r.addrs[name]
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("host %s at %s: %v", name, addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), replicaTimeout)
	defer cancel()
	tc := r.tls
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
		tc = tc.Clone()
		tc.ServerName = h
	}
	conn, err := r.d.tr.Dial(ctx, ua, tc, replicaQUIC())
	if err != nil {
		return nil, nil, fmt.Errorf("host %s: %v", name, err)
	}
	fail := func(err error) (*quic.Conn, *quic.Stream, error) {
		conn.CloseWithError(0, "")
		return nil, nil, err
	}
	if got, err := transport.PeerHostID(conn.ConnectionState().TLS); err != nil || string(got) != name {
		return fail(fmt.Errorf("%s is not host %s", addr, name))
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fail(fmt.Errorf("host %s: %v", name, err))
	}
	if _, err := str.Write(append([]byte{byte(len(r.j.id)) | flags}, r.j.id...)); err != nil {
		return fail(fmt.Errorf("host %s: %v", name, err))
	}
	return conn, str, nil
}

// shareKeyJob is the Job of the checkpoint keys of a share's ranks, as
// host/job writes them.
const shareKeyJob = "job"
