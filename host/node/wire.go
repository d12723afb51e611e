package node

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// msgType says what a control message carries.
type msgType uint8

const (
	msgPrepare msgType = 1 + iota
	msgReady
	msgStart
	msgOutput
	msgExit
	msgEnd
	msgCancel
	msgError
	msgStatusQuery
	msgStatus
	msgCancelled
	msgCheckpoint
	msgCheckpointed
	msgLogs
	msgLogged
	msgDetach
	msgDetached
	msgHeld
	msgHolds
	msgPrinted
	msgKept
	msgMigrate  // migrate, drain or undrain (daemon_migrate.go)
	msgMigrated // its answer
	msgHandover // a rank's migration state follows (on a replica stream)
	msgTaken    // the target takes it, or refuses why
	msgFinal    // a migrating rank's last state, straight (after HANDOVER)
	msgLast     = msgFinal
)

func (t msgType) String() string {
	names := [...]string{"PREPARE", "READY", "START", "OUTPUT", "EXIT", "END", "CANCEL", "ERROR", "STATUS?", "STATUS", "CANCELLED", "CHECKPOINT", "CHECKPOINTED", "LOGS", "LOGGED", "DETACH", "DETACHED", "HELD?", "HOLDS", "PRINTED", "KEPT", "MIGRATE", "MIGRATED", "HANDOVER", "TAKEN", "FINAL"}
	if t >= 1 && t <= msgLast {
		return names[t-1]
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// maxMsg bounds a control message: a module plus its job description.
const maxMsg = 512 << 20

// Header: type u8 | length u32 (big-endian) of the body.
const headerLen = 5

// writeMsg writes one message.
func writeMsg(w io.Writer, t msgType, body []byte) error {
	if len(body) > maxMsg {
		return fmt.Errorf("node: %s message of %d bytes is too large", t, len(body))
	}
	b := make([]byte, headerLen, headerLen+len(body))
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

// writeJSON writes a message whose body is v in JSON.
func writeJSON(w io.Writer, t msgType, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeMsg(w, t, body)
}

// msgWriter writes whole messages to one stream for several goroutines.
// After a failed write (a deadline, a broken stream) the stream may hold
// part of a message, so it refuses every later one.
type msgWriter struct {
	mu     sync.Mutex
	w      io.Writer
	broken error
}

func (m *msgWriter) send(t msgType, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken != nil {
		return m.broken
	}
	m.broken = writeMsg(m.w, t, body)
	return m.broken
}

func (m *msgWriter) sendJSON(t msgType, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return m.send(t, body)
}

// readMsg reads one message. A peer that sends an unknown type or an
// oversized length gets ErrProtocol; a stream that ends inside a message,
// io.ErrUnexpectedEOF.
func readMsg(r io.Reader) (msgType, []byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	t, n := msgType(h[0]), binary.BigEndian.Uint32(h[1:])
	if t < 1 || t > msgLast {
		return 0, nil, fmt.Errorf("%w: unknown message %s", ErrProtocol, t)
	}
	if n > maxMsg {
		return 0, nil, fmt.Errorf("%w: %s message of %d bytes", ErrProtocol, t, n)
	}
	// Read what comes rather than allocate what the header claims.
	body, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return 0, nil, err
	}
	if len(body) < int(n) {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return t, body, nil
}

// decodeJSON decodes a message body into v, refusing unknown fields.
func decodeJSON(t msgType, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: bad %s message: %v", ErrProtocol, t, err)
	}
	return nil
}

// prepareMsg asks a host to prepare its part of a job.
type prepareMsg struct {
	Job       string   `json:"job"`
	N         int      `json:"n"`
	Placement []string `json:"placement"` // host ID of each rank
	Args      []string `json:"args,omitempty"`
	Env       []string `json:"env,omitempty"`
	Module    string   `json:"module"` // display name
	// FailureTimeout: how long a host of the job may be silent before it
	// is declared dead; 0: the host's own.
	FailureTimeout time.Duration `json:"failure_timeout,omitempty"`
	// CheckpointEvery > 0 makes the job take coordinated checkpoints at
	// that interval, each rank's kept on its host and on Replicas others.
	CheckpointEvery time.Duration `json:"checkpoint_every,omitempty"`
	Replicas        int           `json:"replicas,omitempty"`
	// CheckpointOverhead is the share of a rank's time the periodic
	// checkpoints may hold it up (job.Config.CheckpointOverhead); 0: no
	// limit.
	CheckpointOverhead float64 `json:"checkpoint_overhead,omitempty"`
	// Mounts are directories that exist on every host (job_mounts.go).
	Mounts []mountMsg `json:"mounts,omitempty"`
	// Detached: submitted by a host for `submit --detach`.
	Detached bool `json:"detached,omitempty"`
	// Resume, if set, continues a job that stopped with its committed
	// epochs kept (`submit --resume`, daemon_resume.go): Placement is the
	// resumed one, and each host takes the module it kept.
	Resume *resumeMsg `json:"resume,omitempty"`
}

// encodePrepare is the PREPARE body: JSON length u32 | JSON | module bytes.
func encodePrepare(p prepareMsg, module []byte) ([]byte, error) {
	return encodeWithModule(p, module)
}

func decodePrepare(body []byte) (prepareMsg, []byte, error) {
	var p prepareMsg
	module, err := decodeWithModule(msgPrepare, body, &p)
	if err != nil {
		return p, nil, err
	}
	if err := p.check(); err != nil {
		return p, nil, err
	}
	return p, module, nil
}

// encodeWithModule is a body of JSON length u32 | JSON of v | module.
func encodeWithModule(v any, module []byte) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(j)))
	b = append(b, j...)
	return append(b, module...), nil
}

// decodeWithModule decodes a body of encodeWithModule into v and returns
// the module.
func decodeWithModule(t msgType, body []byte, v any) ([]byte, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: short %s message", ErrProtocol, t)
	}
	n := binary.BigEndian.Uint32(body)
	if uint64(n) > uint64(len(body)-4) {
		return nil, fmt.Errorf("%w: %s description past the message's end", ErrProtocol, t)
	}
	if err := decodeJSON(t, body[4:4+n], v); err != nil {
		return nil, err
	}
	return body[4+n:], nil
}

// check validates a job description from the wire.
func (p prepareMsg) check() error {
	switch {
	case p.Job == "" || len(p.Job) > 64:
		return fmt.Errorf("%w: bad job ID %q", ErrProtocol, p.Job)
	case p.N < 1 || p.N > maxWorkers:
		return fmt.Errorf("%w: a job of %d workers", ErrProtocol, p.N)
	case len(p.Placement) != p.N:
		return fmt.Errorf("%w: placement of %d ranks for %d workers", ErrProtocol, len(p.Placement), p.N)
	case p.FailureTimeout < 0:
		return fmt.Errorf("%w: failure timeout %v", ErrProtocol, p.FailureTimeout)
	case p.CheckpointEvery < 0 || p.Replicas < 0:
		return fmt.Errorf("%w: checkpoint every %v with %d replicas", ErrProtocol, p.CheckpointEvery, p.Replicas)
	case !(p.CheckpointOverhead >= 0 && p.CheckpointOverhead <= 1):
		return fmt.Errorf("%w: checkpoint overhead %v", ErrProtocol, p.CheckpointOverhead)
	}
	for _, m := range p.Mounts {
		if m.Host == "" || m.Guest == "" {
			return fmt.Errorf("%w: mount %q", ErrProtocol, m)
		}
	}
	return nil
}

// maxWorkers bounds the size of a job.
const maxWorkers = 1 << 16

// readyMsg: the host's part of the job is ready; its transport listens on
// Port of the host's address.
type readyMsg struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// Inputs: the hash of each mount of the job here, in order ("" for
	// a read-write one).
	Inputs []string `json:"inputs,omitempty"`
}

// startMsg gives every host of the job the address of every other one.
type startMsg struct {
	Addrs map[string]string `json:"addrs"` // host ID → UDP host:port
}

// exitMsg says how the host's ranks ended: Codes and Errs by rank, in the
// order of Ranks; an empty Errs[i] is no error.
type exitMsg struct {
	Ranks []int    `json:"ranks"`
	Codes []int    `json:"codes"`
	Errs  []string `json:"errs"`
	// Damaged: a rank's error is a checkpoint found damaged (at a lazy
	// restore or a recovery's check): `submit --resume` falls back.
	Damaged bool `json:"damaged,omitempty"`
}

// cancelMsg, first on a stream of its own, asks a host to stop a job now
// (`librahost cancel`); the host answers CANCELLED with the job's status
// once its workers have stopped (a status with no state: no such job).
type cancelMsg struct {
	Job string `json:"job"`
}

// checkpointMsg, first on a stream of its own, asks a host for a
// checkpoint of a job at once (`librahost checkpoint --job`); the host
// that runs the job's coordinator answers CHECKPOINTED once the epoch is
// committed, another says it does not run it.
type checkpointMsg struct {
	Job string `json:"job"`
}

type checkpointedMsg struct {
	Epoch uint64 `json:"epoch,omitempty"`
	// NotHere: the host does not run the job's coordinator (or the job).
	NotHere string `json:"not_here,omitempty"`
	Error   string `json:"error,omitempty"`
}

// errorMsg is one line saying why a host or submitter gives up the job.
type errorMsg struct {
	Error string `json:"error"`
	// Kept: the job stopped with its committed epochs kept on its hosts
	// left (its coordinator's host lost): `submit --resume` continues it.
	Kept bool `json:"kept,omitempty"`
	// Lost: the job's coordinator declared this host lost while it
	// lived; the job goes on without it, as after its death.
	Lost bool `json:"lost,omitempty"`
	// Damaged: as exitMsg's.
	Damaged bool `json:"damaged,omitempty"`
}

// Output body: rank u32 | stream u8 (1 stdout, 2 stderr) | offset u64 |
// bytes, all big-endian. Offset is where the bytes begin in the rank's
// stream: a rank rolled back to a checkpoint prints again from its
// offset there, and the submitter drops what it has printed already
// (outputPrinted).
type outputMsg struct {
	rank   int
	stream byte
	off    uint64
	p      []byte
}

const outputHeader = 13

func encodeOutput(o outputMsg) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, outputHeader+len(o.p)), uint32(o.rank))
	b = binary.BigEndian.AppendUint64(append(b, o.stream), o.off)
	return append(b, o.p...)
}

func decodeOutput(body []byte) (outputMsg, error) {
	if len(body) < outputHeader || (body[4] != 1 && body[4] != 2) {
		return outputMsg{}, fmt.Errorf("%w: bad OUTPUT message", ErrProtocol)
	}
	o := outputMsg{rank: int(binary.BigEndian.Uint32(body)), stream: body[4], off: binary.BigEndian.Uint64(body[5:]), p: body[outputHeader:]}
	if o.off+uint64(len(o.p)) < o.off {
		return outputMsg{}, fmt.Errorf("%w: OUTPUT past the end of a stream", ErrProtocol)
	}
	return o, nil
}

// outputPrinted counts, by rank and stream, the bytes a submitter has
// printed, so that each byte of output is printed once however often a
// rank rolled back prints it again.
type outputPrinted map[[2]int]uint64

// fresh returns the part of o not printed yet, and counts it printed.
// Bytes past a gap (output lost, which offsets cannot mend) are printed
// as they come.
func (pr outputPrinted) fresh(o outputMsg) []byte {
	k := [2]int{o.rank, int(o.stream)}
	have, end := pr[k], o.off+uint64(len(o.p))
	if end <= have {
		return nil
	}
	p := o.p
	if o.off < have {
		p = p[have-o.off:]
	}
	pr[k] = end
	return p
}
