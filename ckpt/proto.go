package ckpt

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The checkpoint protocol of a job spread over several hosts, as two plain
// state machines in the manner of etcd raft's Ready: an EpochCoordinator,
// run by one host of the job, and a Participant per host. Neither has
// goroutines, a clock, randomness or I/O: the driver feeds them events
// (with the time as an argument where it matters), sends the messages
// they return to the hosts they name, and carries out their actions
// (capture a rank, write, replicate, commit, roll back, restart).
//
// An epoch, failure-free:
//
//	coordinator  Trigger → MARKER(e) to every live host
//	participant  MARKER(e) → Capture each local rank at its next capture point
//	             (a rank that receives a message stamped ≥ e captures e first,
//	             even before the marker: Paused(rank, e))
//	             Paused → Persist; Durable → Replicate to R other hosts;
//	             all local ranks durable and replicated, and MARKER(e)
//	             came (a ROUTE before it may bring a rank) → DONE(e)
//	coordinator  DONE(e) from every live host → PersistCommit (its own host)
//	             CommitDurable → COMMIT(e, record) to every live host
//	participant  COMMIT → PersistCommit; CommitDurable → Release(e): the
//	             messages that e's checkpoints show delivered are stable
//
// so three control messages per host per epoch. A round that fails on a
// host (DONE with an error) is abandoned; the next MARKER tells the hosts.
//
// Rounds may overlap (ProtoConfig.MaxRounds, as Flink's
// maxConcurrentCheckpoints): round e+1 begins while round e is still being
// written, so that a checkpoint asked for meanwhile does not wait for e's
// commit. The rules that keep it consistent:
//
//   - Commits go in epoch order: e+1's record is written only once e's is
//     durable, and hosts Release in epoch order.
//   - A rank takes the rounds in epoch order: it is asked for e+1 once it
//     took e, and one that meets a message stamped e+1 first takes e. It
//     takes e+1 before e+1's MARKER came only if e's did (with a single
//     round at a time, always): an earlier round's MARKER may still be on
//     its way otherwise.
//   - A round that fails ends every later one under way, on the
//     coordinator and on the failing host (an incremental capture takes
//     the chunks it did not change from the capture before: a later
//     checkpoint may rest on the failed one). No round begins while a
//     failed one leaves a gap behind an earlier one still under way, so
//     the rounds under way are always the newest begun, and the oldest of
//     them, which each MARKER names, tells a host that every earlier round
//     that did not commit was abandoned.
//   - A recovery, a switch of a migration and a resume wait for or
//     abandon every round under way, as with one: a host's loss while the
//     oldest round's record is written waits for that write, then rolls
//     back to it and abandons the later round.
//
// A host silent for the failure timeout (Tick) or reported lost is dead:
// the coordinator starts a new incarnation, re-places the dead host's
// ranks on live hosts that hold their committed checkpoint, and sends
// ROLLBACK(committed epoch, incarnation, placement) to every live host;
// each rolls its ranks back (or restarts the ranks placed on it from its
// replicas), answers RECOVERED, and once all have, RESUME lets the ranks
// run and a round begins at once, so that every rank's checkpoint is
// replicated again. Messages of an older incarnation are ignored. If the
// coordinator's own host dies, the participants stop the job (Tick) and
// keep what is committed.

// HostID is a host's index in a job's list of hosts.
type HostID int

// MsgKind is the kind of a control message.
type MsgKind uint8

const (
	MsgMarker    MsgKind = iota + 1 // coordinator → host: take epoch Epoch
	MsgDone                         // host → coordinator: Epoch durable and replicated (or Err)
	MsgCommit                       // coordinator → host: Record is committed
	MsgRollback                     // coordinator → host: incarnation Inc rolls back to Epoch with Place
	MsgRecovered                    // host → coordinator: rolled back for Inc
	MsgResume                       // coordinator → host: every host rolled back: run
	MsgStop                         // coordinator → host: the job ends (Err)

	// Migration (proto_migrate.go).
	MsgMigrate   // coordinator → source host: pre-copy Rank to Host
	MsgCopied    // source host → coordinator: Rank's pre-copy converged, may it stop?
	MsgSwitch    // coordinator → source host: stop Rank and send its last state
	MsgMoved     // source host → coordinator: Host holds all of Rank (at Epoch, Ended)
	MsgMigFailed // source host → coordinator: Rank's migration to Host failed (Err); it runs on
	MsgRoute     // coordinator → host: Rank runs on Host from now on (Place, Epoch, Ended)
)

var msgKindNames = [...]string{MsgMarker: "MARKER", MsgDone: "DONE", MsgCommit: "COMMIT",
	MsgRollback: "ROLLBACK", MsgRecovered: "RECOVERED", MsgResume: "RESUME", MsgStop: "STOP",
	MsgMigrate: "MIGRATE", MsgCopied: "COPIED", MsgSwitch: "SWITCH", MsgMoved: "MOVED",
	MsgMigFailed: "MIGFAILED", MsgRoute: "ROUTE"}

// ToCoordinator reports whether messages of kind k go from a host to the
// coordinator (the others go from the coordinator to a host's
// participant).
func (k MsgKind) ToCoordinator() bool {
	switch k {
	case MsgDone, MsgRecovered, MsgCopied, MsgMoved, MsgMigFailed:
		return true
	}
	return false
}

func (k MsgKind) String() string {
	if int(k) < len(msgKindNames) && msgKindNames[k] != "" {
		return msgKindNames[k]
	}
	return fmt.Sprintf("MsgKind(%d)", uint8(k))
}

// Msg is a control message between the coordinator and a participant.
type Msg struct {
	Kind     MsgKind
	From, To HostID
	Inc      uint64 // the sender's incarnation of the job
	Epoch    uint64
	Oldest   uint64        // Marker: the oldest round still under way (the rounds before it that did not commit were abandoned)
	Place    []HostID      // Rollback: rank → host
	Live     []bool        // Rollback: the hosts alive
	Digests  []RankDigest  // Done: the manifest digests of the host's ranks
	Record   *CommitRecord // Commit
	Err      string        // Done: the host's checkpoint failed; Stop: why the job ends; MigFailed: why
	Rank     int           // migration messages: the rank that moves
	Host     HostID        // migration messages: the host it moves to
	Ended    bool          // Moved, Route: the rank's program had ended
	Held     time.Duration // Done: the longest the host's ranks were held up by their checkpoints of Epoch (pause, waits for the capture)
}

// RankDigest names one rank's checkpoint of an epoch by its manifest's hash.
type RankDigest struct {
	Rank   int
	Digest Hash
}

// CommitRecord is what makes a job epoch count: every rank's checkpoint of
// Epoch is durable on its host and on the hosts Holders names.
type CommitRecord struct {
	Epoch   uint64
	Inc     uint64
	Place   []HostID   // rank → host that made its checkpoint
	Holders [][]HostID // rank → hosts holding its checkpoint (its own first)
	Digests []RankDigest
}

// ActionKind is the kind of an Action.
type ActionKind uint8

const (
	// Participant actions.
	ActCapture   ActionKind = iota + 1 // ask Rank to stop for Epoch at its next capture point
	ActPersist                         // Rank stopped (or Ended): write its checkpoint of Epoch
	ActReplicate                       // send Rank's checkpoint of Epoch to Host
	ActAbandon                         // the round of Epoch will not commit: drop what it wrote
	ActRelease                         // Epoch is committed: its delivered messages are stable
	ActRollback                        // roll Rank back to its checkpoint of Epoch (0: its start)
	ActRestore                         // restart Rank here from its checkpoint of Epoch (a replica)
	ActDrop                            // Rank runs elsewhere now: stop it here
	ActRoute                           // messages follow Place from now on, as incarnation Inc
	ActResume                          // every host rolled back: let the ranks run
	ActStop                            // the job ends here (Err), committed epochs kept

	// Actions of both.
	ActPersistCommit // make Record durable here, then call CommitDurable

	// Coordinator actions.
	ActRecover // Host is lost: incarnation Inc rolls back to Epoch (for logs and status)

	// Migration actions (proto_migrate.go). On the source host:
	ActCopy   // pre-copy Round of Rank to Host: the chunks written since round Round-1 began (round 1: all Host lacks)
	ActHalt   // stop Rank at its next capture point and keep it stopped (MigratePaused)
	ActFinal  // send Rank's last dirty chunks and whole state to Host (FinalDurable)
	ActGoOn   // Rank's migration failed (Err): it runs on here
	ActCancel // tell Host to drop what it received of Rank
	// On every host:
	ActMove // Rank runs on Host from now on: messages follow Place (SetRoute)
	// On the target host:
	ActAdopt // start Rank here from the state it received, Epoch its newest checkpoint
	// On the coordinator's host, for the command that asked:
	ActMigrated // Rank's migration to Host ended (Err: why it failed, the rank runs where it ran)
	ActDrained  // every rank left Host (Err: why the drain stopped)
)

var actionNames = [...]string{ActCapture: "Capture", ActPersist: "Persist", ActReplicate: "Replicate",
	ActAbandon: "Abandon", ActRelease: "Release", ActRollback: "Rollback", ActRestore: "Restore",
	ActDrop: "Drop", ActRoute: "Route", ActResume: "Resume", ActStop: "Stop",
	ActPersistCommit: "PersistCommit", ActRecover: "Recover",
	ActCopy: "Copy", ActHalt: "Halt", ActFinal: "Final", ActGoOn: "GoOn", ActCancel: "Cancel",
	ActMove: "Move", ActAdopt: "Adopt", ActMigrated: "Migrated", ActDrained: "Drained"}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) && actionNames[k] != "" {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is something a core asks its driver to do.
type Action struct {
	Kind   ActionKind
	Rank   int
	Epoch  uint64
	Inc    uint64
	Host   HostID // Replicate: to; Recover: the host lost
	Ended  bool   // Persist: the rank's program has ended
	Round  int    // Copy: the pre-copy round
	Place  []HostID
	Record *CommitRecord
	Err    string
	Lost   bool // Stop: this host was declared lost; the job goes on without it
	// Held is, in the coordinator's PersistCommit, the longest any rank
	// was held up by its checkpoint of Epoch (Done's Held): what the
	// driver paces the periodic rounds by.
	Held time.Duration
}

// Ready is what a core has to say after some events: messages to send and
// actions to carry out, in order.
type Ready struct {
	Msgs    []Msg
	Actions []Action
}

func (r *Ready) msg(m Msg)       { r.Msgs = append(r.Msgs, m) }
func (r *Ready) act(a Action)    { r.Actions = append(r.Actions, a) }
func (r *Ready) take() (x Ready) { x, *r = *r, Ready{}; return x }

// ProtoConfig is the part of a job's configuration both cores share.
// Zero values mean the defaults.
type ProtoConfig struct {
	Hosts          int           // hosts in the job
	Coordinator    HostID        // the host that runs the coordinator
	Place          []HostID      // rank → host at the start
	Replicas       int           // R: other hosts holding each checkpoint (default 1, at most Hosts-1)
	FailureTimeout time.Duration // silence after which a host is dead (default 2 s)
	Inc            uint64        // incarnation to start as
	Committed      uint64        // newest committed epoch (0: none)
	Holders        [][]HostID    // where each rank's committed checkpoint is (Committed > 0)

	// MaxRounds is how many checkpoint rounds may be under way at once
	// (default 1), as Flink's maxConcurrentCheckpoints: with 2, round e+1
	// begins while round e is still being written. Rounds commit in
	// epoch order, and a round that fails ends every later one under way.
	MaxRounds int

	// Migration (proto_migrate.go): pre-copy stops once a round leaves at
	// most MigrateSmall bytes dirty (default 4 MiB), after MigrateStall
	// rounds in a row that did not shrink what is dirty (default 3), or
	// after MigrateRounds rounds (default 30). A migration whose target
	// makes nothing durable, and whose round goes no further (the driver's
	// Participant.CopyProgress), for MigrateTimeout (default 10 s) fails, and
	// so does one whose copy converged but whose switch did not come in
	// MigrateWait (default 1 min: the checkpoint round under way, which
	// the switch waits for, did not end). A switch that comes more than
	// MigrateTopUp (default 50 ms) after the last round was durable at
	// the target copies once more before the rank stops, so that the
	// rank's downtime does not grow with the wait.
	MigrateSmall   int64
	MigrateStall   int
	MigrateRounds  int
	MigrateTimeout time.Duration
	MigrateWait    time.Duration
	MigrateTopUp   time.Duration
}

// DefaultFailureTimeout is how long a host may be silent before it is
// declared dead.
const DefaultFailureTimeout = 2 * time.Second

func (c *ProtoConfig) validate() error {
	if c.Hosts <= 0 {
		return fmt.Errorf("ckpt: a job needs at least one host (got %d)", c.Hosts)
	}
	if c.Coordinator < 0 || int(c.Coordinator) >= c.Hosts {
		return fmt.Errorf("ckpt: coordinator host %d is not among the job's %d hosts", c.Coordinator, c.Hosts)
	}
	if len(c.Place) == 0 {
		return fmt.Errorf("ckpt: a job needs at least one rank")
	}
	for r, h := range c.Place {
		if h < 0 || int(h) >= c.Hosts {
			return fmt.Errorf("ckpt: rank %d is placed on host %d, not among the job's %d hosts", r, h, c.Hosts)
		}
	}
	if c.Replicas < 0 {
		return fmt.Errorf("ckpt: replicas must be 0 or more (got %d)", c.Replicas)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	c.Replicas = min(c.Replicas, c.Hosts-1)
	if c.FailureTimeout <= 0 {
		c.FailureTimeout = DefaultFailureTimeout
	}
	if c.MaxRounds < 0 {
		return fmt.Errorf("ckpt: rounds under way at once must be 1 or more (got %d)", c.MaxRounds)
	}
	c.MaxRounds = max(c.MaxRounds, 1)
	if err := c.validateMigrate(); err != nil {
		return err
	}
	if c.Committed > 0 && len(c.Holders) != len(c.Place) {
		return fmt.Errorf("ckpt: committed epoch %d names holders of %d ranks, the job has %d", c.Committed, len(c.Holders), len(c.Place))
	}
	c.Place = slices.Clone(c.Place)
	return nil
}

// ReplicaHosts returns the hosts that hold replicas of the checkpoints of
// a rank placed on host h: the next r live hosts after h, in host order.
func ReplicaHosts(h HostID, live []bool, r int) []HostID {
	var out []HostID
	for i := 1; i < len(live) && len(out) < r; i++ {
		if o := HostID((int(h) + i) % len(live)); live[o] {
			out = append(out, o)
		}
	}
	return out
}

// holdersOf returns, for each rank, its host and its replica hosts.
func holdersOf(place []HostID, live []bool, r int) [][]HostID {
	out := make([][]HostID, len(place))
	for rank, h := range place {
		out[rank] = append([]HostID{h}, ReplicaHosts(h, live, r)...)
	}
	return out
}

func allLive(n int) []bool {
	l := make([]bool, n)
	for i := range l {
		l[i] = true
	}
	return l
}

// String renders a message on one line, for logs and golden scripts.
func (m Msg) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s h%d->h%d inc=%d", m.Kind, m.From, m.To, m.Inc)
	if m.Kind >= MsgMigrate {
		fmt.Fprintf(&b, " rank=%d to=h%d", m.Rank, m.Host)
	}
	if m.Epoch != 0 || m.Kind == MsgRollback {
		fmt.Fprintf(&b, " e=%d", m.Epoch)
	}
	if m.Oldest != 0 && m.Oldest != m.Epoch {
		fmt.Fprintf(&b, " oldest=%d", m.Oldest)
	}
	if m.Place != nil {
		fmt.Fprintf(&b, " place=%v", m.Place)
	}
	if m.Live != nil {
		fmt.Fprintf(&b, " live=%s", liveString(m.Live))
	}
	if m.Digests != nil {
		fmt.Fprintf(&b, " ranks=%s", digestRanks(m.Digests))
	}
	if m.Record != nil {
		fmt.Fprintf(&b, " record=e%d", m.Record.Epoch)
	}
	if m.Ended {
		b.WriteString(" ended")
	}
	if m.Err != "" {
		fmt.Fprintf(&b, " err=%q", m.Err)
	}
	return b.String()
}

// String renders an action on one line.
func (a Action) String() string {
	var b strings.Builder
	b.WriteString(a.Kind.String())
	switch a.Kind {
	case ActCapture, ActPersist, ActRollback, ActRestore:
		fmt.Fprintf(&b, " rank=%d e=%d", a.Rank, a.Epoch)
	case ActReplicate:
		fmt.Fprintf(&b, " rank=%d e=%d to=h%d", a.Rank, a.Epoch, a.Host)
	case ActDrop:
		fmt.Fprintf(&b, " rank=%d", a.Rank)
	case ActAbandon, ActRelease:
		fmt.Fprintf(&b, " e=%d", a.Epoch)
	case ActRoute, ActResume:
		fmt.Fprintf(&b, " inc=%d", a.Inc)
	case ActRecover:
		fmt.Fprintf(&b, " lost=h%d inc=%d e=%d", a.Host, a.Inc, a.Epoch)
	case ActCopy:
		fmt.Fprintf(&b, " rank=%d to=h%d round=%d", a.Rank, a.Host, a.Round)
	case ActFinal, ActCancel, ActMove, ActMigrated:
		fmt.Fprintf(&b, " rank=%d to=h%d", a.Rank, a.Host)
	case ActHalt, ActGoOn:
		fmt.Fprintf(&b, " rank=%d", a.Rank)
	case ActAdopt:
		fmt.Fprintf(&b, " rank=%d e=%d", a.Rank, a.Epoch)
	case ActDrained:
		fmt.Fprintf(&b, " host=h%d", a.Host)
	}
	if a.Ended {
		b.WriteString(" ended")
	}
	if a.Lost {
		b.WriteString(" lost")
	}
	if a.Place != nil {
		fmt.Fprintf(&b, " place=%v", a.Place)
	}
	if a.Record != nil {
		fmt.Fprintf(&b, " record=%s", a.Record)
	}
	if a.Err != "" {
		fmt.Fprintf(&b, " err=%q", a.Err)
	}
	return b.String()
}

func (c *CommitRecord) String() string {
	return fmt.Sprintf("{e=%d inc=%d place=%v holders=%v ranks=%s}", c.Epoch, c.Inc, c.Place, c.Holders, digestRanks(c.Digests))
}

func digestRanks(ds []RankDigest) string {
	rs := make([]string, len(ds))
	for i, d := range ds {
		rs[i] = fmt.Sprint(d.Rank)
	}
	return "[" + strings.Join(rs, " ") + "]"
}

func liveString(live []bool) string {
	var hs []string
	for h, l := range live {
		if l {
			hs = append(hs, fmt.Sprintf("h%d", h))
		}
	}
	return "[" + strings.Join(hs, " ") + "]"
}
