package replica

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/librahost/librahost/ckpt"
)

// Stats says what one replica cost.
type Stats struct {
	Chunks int   // distinct chunks the checkpoint uses
	Sent   int   // chunk values sent (the replica lacked them)
	Bytes  int64 // bytes of those values
}

// Send offers k's checkpoint of epoch in store to the replica host at the
// other end of rw and sends the values it asks for. It returns once the
// replica is durable there, or with the reason it was refused.
func Send(rw io.ReadWriter, store *ckpt.Store, k ckpt.Key, epoch uint64) (Stats, error) {
	r, err := store.ReplicaOf(k, epoch)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Chunks: len(r.Chunks)}
	if err := writeFrame(rw, tOffer, encodeOffer(offer{k, epoch, r.Manifest, r.Chunks})); err != nil {
		return st, err
	}
	var buf []byte
	typ, body, err := readFrame(rw, &buf)
	if err != nil {
		return st, err
	}
	if typ == tResult {
		return st, result(body)
	}
	if typ != tNeed {
		return st, fmt.Errorf("%w: frame type %d instead of NEED", ErrProtocol, typ)
	}
	ix, err := decodeIndexes(body, len(r.Chunks))
	if err != nil {
		return st, err
	}
	need := make([]ckpt.Hash, len(ix))
	for k, i := range ix {
		need[k] = r.Chunks[i]
	}
	w := bufio.NewWriterSize(rw, 1<<20)
	var at [4]byte
	k2 := 0
	err = store.ReadValues(need, func(_ ckpt.Hash, v []byte) error {
		binary.BigEndian.PutUint32(at[:], ix[k2])
		k2++
		st.Sent++
		st.Bytes += int64(len(v))
		return writeFrame(w, tValue, at[:], v)
	})
	if err != nil {
		return st, err
	}
	if err := writeFrame(w, tEnd, nil); err != nil {
		return st, err
	}
	if err := w.Flush(); err != nil {
		return st, err
	}
	typ, body, err = readFrame(rw, &buf)
	if err != nil {
		return st, err
	}
	if typ != tResult {
		return st, fmt.Errorf("%w: frame type %d instead of RESULT", ErrProtocol, typ)
	}
	return st, result(body)
}

func result(body []byte) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty result", ErrProtocol)
	}
	if body[0] == 1 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRefused, body[1:])
}

// Serve takes one replica from the source at the other end of rw into
// store, and answers whether it is durable. A refusal is said to the
// source and returned.
func Serve(rw io.ReadWriter, store *ckpt.Store) error {
	err := serve(rw, store)
	res := []byte{1}
	if err != nil {
		res = append([]byte{0}, err.Error()...)
	}
	if werr := writeFrame(rw, tResult, res); err == nil {
		err = werr
	}
	return err
}

func serve(rw io.ReadWriter, store *ckpt.Store) error {
	var buf []byte
	r := bufio.NewReaderSize(rw, 1<<20)
	typ, body, err := readFrame(r, &buf)
	if err != nil {
		return err
	}
	if typ != tOffer {
		return fmt.Errorf("%w: frame type %d instead of OFFER", ErrProtocol, typ)
	}
	o, err := decodeOffer(body)
	if err != nil {
		return err
	}
	manifest := append([]byte(nil), o.manifest...)
	missing, err := store.Missing(o.chunks)
	if err != nil {
		return err
	}
	pos := make(map[ckpt.Hash]uint32, len(o.chunks))
	for i, h := range o.chunks {
		pos[h] = uint32(i)
	}
	ix := make([]uint32, len(missing))
	for k, h := range missing {
		ix[k] = pos[h]
	}
	if err := writeFrame(rw, tNeed, encodeIndexes(ix)); err != nil {
		return err
	}
	values := make(map[ckpt.Hash][]byte, len(ix))
	for {
		// Each value is read into a slice of its own, which the store keeps.
		buf = nil
		typ, body, err := readFrame(r, &buf)
		if err != nil {
			return err
		}
		if typ == tEnd {
			break
		}
		if typ != tValue || len(body) < 4 {
			return fmt.Errorf("%w: frame type %d instead of VALUE or END", ErrProtocol, typ)
		}
		i := binary.BigEndian.Uint32(body)
		if int(i) >= len(o.chunks) {
			return fmt.Errorf("%w: value of chunk %d of %d", ErrProtocol, i, len(o.chunks))
		}
		values[o.chunks[i]] = body[4:]
	}
	return store.AddReplica(manifest, values)
}
