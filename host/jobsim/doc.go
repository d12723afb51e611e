// Package jobsim is a deterministic simulation of a job over several
// hosts: the checkpoint protocol's cores (ckpt.EpochCoordinator and
// ckpt.Participant), the channel cores of every pair of ranks
// (transport.Sender and transport.Receiver, stability riding on their acks
// as in librahost), a store per host that holds
// the ranks' checkpoints and their replicas, and programs that send,
// receive, write a file and print. One seed drives everything that can
// happen: the order of steps, loss, duplication and reordering of data
// frames, host crashes at any step (during a capture, a write, a
// replication, between DONE and COMMIT, during a recovery), disk write
// failures, checkpoint rounds that overlap (Config.MaxRounds), and live
// migrations of ranks and drains of hosts asked for at random steps
// (pre-copy rounds chasing what the program writes, targets
// that refuse, are slow or die mid-way, the route change that makes each
// sender resend its log to the rank's new host, frames and acks that reach
// the host a rank left). Invariants are checked as it runs: no orphan and
// no lost message in any committed epoch, each message consumed exactly
// once and in order by its program, a rank running on one host only,
// output delivered exactly once, the final output and files equal those
// of a run without failures, and a checkpoint round begun once the
// programs ended commits. A failing seed is printed with the trace of its
// last steps and replays exactly.
//
//	go test ./host/jobsim                     # 500 seeds
//	go test ./host/jobsim -seeds 10000        # more
//	go test ./host/jobsim -first 20001 -seeds 10000  # others
//	go test ./host/jobsim -seed 1234 -v       # one seed, with its trace
package jobsim
