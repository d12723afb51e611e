package ckpt

import (
	"fmt"
	"time"
)

// Live migration of a rank from its host (the source) to another (the
// target), and draining a host, as part of the same two cores as the
// checkpoint protocol (proto.go): the EpochCoordinator decides when a rank
// may stop and where it runs; the source's Participant runs the pre-copy.
// Only the moving rank stops; nobody rolls back.
//
//	coordinator  Migrate(rank, target) → MIGRATE to the source
//	source       Copy round 1 (every chunk the target lacks); each round
//	             durable at the target (CopyDurable, with the bytes written
//	             since it began) → Copy the next round, until a round
//	             leaves at most MigrateSmall bytes dirty, or MigrateStall
//	             rounds in a row did not shrink them, or MigrateRounds
//	             rounds were made → COPIED (rounds go on meanwhile)
//	coordinator  COPIED, and no checkpoint round under way → SWITCH
//	source       If the last round was durable more than MigrateTopUp
//	             ago (the switch waited for a checkpoint round), or one
//	             is still under way, Copy once more (the top-up round)
//	             and wait for it;
//	             then Halt the rank at its next capture point (MigratePaused)
//	             → Final: the chunks written since the last round began,
//	             globals, host state, channel state (sender logs and
//	             receive positions) and files, to the target;
//	             FinalDurable → MOVED (with the rank's newest epoch)
//	coordinator  MOVED → the rank's placement is the target's; ROUTE to
//	             every live host; Migrated for the command; a checkpoint
//	             round begins at once
//	every host   ROUTE → Move: SetRoute to the new placement. The source
//	             Drops the rank, the target Adopts it (restores the state
//	             it received and lets it run).
//
// Channels follow the worker: its sequence numbers and logs travel in its
// state. On SetRoute each host's senders to the moved rank send their
// whole log again to the target (transport's Sender.Resend, which
// Endpoint.SetRoute calls for every channel whose receiver changed host);
// the target's receivers drop what the moved state shows delivered, so a
// message that reached the source after the rank stopped (acked there or
// not) comes again from its sender's log, which keeps every message until
// a committed checkpoint of its receiver covers it. The moved rank's own
// senders resend their logs from the target; receivers elsewhere ack to
// its new host. A sender must take acks only from the host its route
// names for the receiver: a late ack from the host the rank left may
// cover messages that reached it after the rank's state left, and would
// stop their retransmission to the new host (host/jobsim loses a message
// without that check).
//
// Rules that keep a migration consistent with the rest of the protocol:
//
//   - A checkpoint round and a switch never overlap. SWITCH is sent only
//     while no round is under way; a Trigger while a switch is under way
//     begins no round, and the round begins when the switch ends. Pre-copy
//     runs during rounds: the rank keeps running and capturing at the
//     source as usual, and its placement in their commit records is the
//     source.
//   - MOVED is the point of no return. Until the source sends it, the
//     migration may fail (the target refuses, dies or is silent for
//     MigrateTimeout: CopyFailed or Tick): the rank goes on at the source
//     (GoOn), the target drops what it got (Cancel), and MIGFAILED tells
//     the coordinator why, in one line, for the command. Once MOVED is sent
//     only the coordinator decides: ROUTE, or a rollback.
//   - A host's loss (recovery, a new incarnation) aborts every migration
//     that has not switched: the ranks roll back where the coordinator
//     places them and the targets drop what they received. Every rank is
//     placed, at a rollback, on a live host that holds its committed
//     checkpoint: a rank that moved after the newest commit goes back to
//     its source (or a replica host of it); the round begun at each move
//     makes the window short.
//   - A draining host takes no new ranks: it is no migration's target, and
//     a rollback places a rank there only when no other live host holds its
//     committed checkpoint. Drain moves the host's ranks one after another
//     to the live host, not draining, that runs the fewest (lowest ID on a
//     tie); Drained says when every rank left, or why the drain stopped. A
//     drain goes on after a rollback. Undrain lets the host take ranks
//     again (and stops a drain under way after its current migration). A
//     migration to a host that began before the host was drained ends as
//     it would, and the drain then moves that rank off too.

// Defaults of the migration settings of ProtoConfig.
const (
	DefaultMigrateSmall   = 4 << 20
	DefaultMigrateStall   = 3
	DefaultMigrateRounds  = 30
	DefaultMigrateTimeout = 10 * time.Second
	DefaultMigrateWait    = time.Minute
	DefaultMigrateTopUp   = 50 * time.Millisecond
)

func (c *ProtoConfig) validateMigrate() error {
	if c.MigrateSmall < 0 || c.MigrateStall < 0 || c.MigrateRounds < 0 || c.MigrateTimeout < 0 || c.MigrateWait < 0 || c.MigrateTopUp < 0 {
		return fmt.Errorf("ckpt: migration settings must be 0 (the default) or more")
	}
	if c.MigrateSmall == 0 {
		c.MigrateSmall = DefaultMigrateSmall
	}
	if c.MigrateStall == 0 {
		c.MigrateStall = DefaultMigrateStall
	}
	if c.MigrateRounds == 0 {
		c.MigrateRounds = DefaultMigrateRounds
	}
	if c.MigrateTimeout == 0 {
		c.MigrateTimeout = DefaultMigrateTimeout
	}
	if c.MigrateWait == 0 {
		c.MigrateWait = DefaultMigrateWait
	}
	if c.MigrateTopUp == 0 {
		c.MigrateTopUp = DefaultMigrateTopUp
	}
	return nil
}

// migPhase is how far a migration has come.
type migPhase uint8

const (
	migCopying   migPhase = iota // pre-copy rounds
	migCopied                    // converged: COPIED sent, rounds go on until SWITCH
	migTopUp                     // source: SWITCH came; a last round runs before the rank stops
	migSwitching                 // SWITCH: the rank stops, its last state goes to the target
	migFinal                     // source: the last state is on its way
	migMoved                     // source: MOVED sent, waiting for ROUTE or a rollback
)
