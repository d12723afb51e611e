// Package job is the one driver of a job of 1..N ranks on this host:
// `librahost run` (a job of one), `run -n N`, their resume and restore,
// and one host's share of a job submitted to a cluster (host/node), each
// rank a host.Worker.
//
// With a state directory it keeps the run record and its lock, the
// module's copy, one checkpoint store for every rank, the output ledger
// and a file journal per rank; it takes coordinated checkpoints in rounds
// (job_rounds.go: a round is a job epoch, run by ckpt's EpochCoordinator
// and Participant cores with this host as the only one; no rank waits for
// another, and the epoch is committed once every rank's checkpoint is
// durable), periodic, asked for on the control socket (`librahost
// checkpoint`, control.go), when the sender logs are full, or at a stop; it resumes from the
// newest committed epoch that every rank can return to, falling back one
// epoch at a time, each refusal said in one line (job_resume.go); and it
// lists and describes the committed epochs (`ckpt ls/inspect`).
//
// Output is written exactly once across kills and resumes: each rank's
// line writer (output.go) counts the guest bytes it emitted in the output
// ledger, a small file mapped shared whose records are checksummed and
// kept twice (ledger.go, ledger_map.go); a ledger that cannot be trusted
// makes the resume print again from the checkpoint. Ranks that share a
// stream write whole lines, prefixed with "[rank] " if asked.
//
// A state directory's own files are checked on resume, and damage is
// refused in one line or repaired, never a reason to drop checkpoints:
// each checkpoint is bound to its run (a run ID and what the run was
// started with, record_run.go), so a store of another run is refused and
// a lost run record is rebuilt from the newest checkpoint
// (record_check.go); a damaged copy of the module is repaired from the
// module given; the file journals decide which epochs a guest with mounts
// may resume from (journal.go). A single run's state directory made by
// the release before this driver (no commit records, the Worker's own
// host state, its own ledger format) resumes as a job of one
// (state_legacy.go, ledger_legacy.go).
//
// A host's share of a job over several hosts (RunShare) gives Ranks, the
// ranks run here, and Endpoint, the caller's transport to the other
// hosts. With Share it takes part in the job's checkpoints (share.go,
// share_rounds.go): ckpt's Participant for the ranks here and, on the
// coordinator's host, the EpochCoordinator, driven by their messages
// over the caller's control streams (host/jobctl); each rank takes its
// checkpoint at its own capture point into the caller's store, the
// caller copies it to the replica hosts and writes the commit records.
// When a host of the job dies, the share carries out the coordinator's
// ROLLBACK (share_recover.go): its ranks stop, the caller makes the
// Endpoint of the new incarnation, and the ranks placed here (its own,
// and the dead host's whose replicas it holds) run again from the
// committed epoch through the resume path of a job on one host, held
// until RESUME; a rank that moves here gets its files under the mounts
// made from its checkpoints' file deltas (share_files.go). Mounts are
// bound as the submitter named them, the same on every host. RunShare
// with a Share returns only when the job has
// ended on every host (Share.Stop); Share.Exited is told each time the
// ranks here have ended. A share given Share.Live resumes a job that
// stopped when its coordinator's host was lost (`submit --resume`): the
// coordinator rolls every live host back to the committed epoch as a new
// incarnation, and the ranks here run only once that ROLLBACK came, by
// the recovery path. Share.Migrate, Drain and Undrain, on the
// coordinator's host, move a rank to another host while the others run
// (migrate*.go): the target makes the rank's worker at the first
// pre-copy round and writes each round into its memory as it comes
// (Share.MigrationIn); the source keeps the rank stopped at a capture
// point while its last state, the chunks written since the last round,
// goes straight to that worker (Share.Mover's Final, Share.FinalIn), with
// its file history (the deltas from the start to its stop, which the
// target redoes on its mounts: migrate_files.go), and the target runs it
// beside its ranks.
//
// Config.Metrics (host/metrics) and Config.Status are told of the job as
// it runs (job_observe.go): each round as it begins, as each rank's part
// is durable here and as it commits or fails (durations from the
// trigger, sizes read from the manifests, each worker's memory and dirty
// rate, the store's size), the control messages of a share, the links of
// a job's own endpoint, and the ranks' states. Status keeps the newest
// checkpoints (DefaultHistory) for a dashboard.
package job
