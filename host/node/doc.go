// Package node runs jobs over several hosts: the host daemon
// (`librahost host`), the submitter (`librahost submit`) and the status
// query (`librahost status`).
//
// Every host daemon listens on one UDP address, --listen: QUIC with the
// cluster's mutual TLS, so only holders of a certificate from the cluster
// CA reach it. Control connections ask for ALPN librahost-ctl/1; the links
// of a job ask for the job's own (transport.JobALPN), and the daemon hands
// them to that job's transport, which shares the daemon's socket; the
// control streams between a job's hosts ask for jobctl.ALPN, and the
// daemon hands them to its jobctl.Hub (not used by jobs yet). A
// submitter connects to each host it names, places rank r on host
// r mod len(hosts), and drives the job over one stream per host:
//
//	submitter → host   PREPARE  job, placement, args, env, mounts, the module
//	host → submitter   READY    the UDP port of the job's links (the host's), the hash of each read-only mount (job_mounts.go)
//	submitter → host   START    every host's transport address
//	host → submitter   OUTPUT   bytes a local rank wrote to stdout or stderr,
//	                            with their offset in the rank's stream (the
//	                            submitter prints each byte once)
//	host → submitter   EXIT     how each local rank ended
//	submitter → host   END      every rank has ended: release the job
//	submitter → host   CANCEL   stop the job now
//	either way         ERROR    one line; the job stops
//
// A status query is a stream of its own: STATUS? answered by STATUS; so
// is a cancel by hand (`librahost cancel`): CANCEL naming the job,
// answered by CANCELLED with the job's status once its workers have
// stopped. A peer that sends anything else first, or garbage, gets one
// ERROR line and the host logs one line.
//
// Each job gets a transport of its own (a QUICTransport on the daemon's
// socket) and an Endpoint routing ranks to hosts by the placement; the
// host with the lower ID dials each pair, and redials when a link goes
// down. A host keeps a job's endpoint until END, so that messages its
// finished ranks sent are still retransmitted until they are acked. A
// broken control stream (the submitter died, or was stopped) cancels the
// job on that host: a submitter killed outright is noticed when its
// connection goes idle (controlQUIC's MaxIdleTimeout); a detached job
// with checkpoints whose submission ran on its coordinator's host is
// cancelled so only if it still runs twice its failure timeout later,
// its coordinator's loss not found (detach_takeover.go). A job cancelled
// otherwise (by hand, or the host stopping) stops reading its stream and
// gives up output the submitter does not take within 2 s, and tells the
// submitter why in an ERROR. Each job's failure timeout (PREPARE's, else
// the host's --failure-timeout) is kept for it.
//
// A job submitted with --checkpoint-every (PREPARE's CheckpointEvery and
// Replicas) is checkpointed by ckpt's protocol (daemon_share.go): every
// host keeps jobs/ID under its --data (a store of its ranks' checkpoints
// and the replicas it holds, and the commit records), runs its share
// through host/job with a Share (the participant, and on the host of
// rank 0 the coordinator) whose control messages go over a
// jobctl.Endpoint, and its job links keep sender logs until a commit
// makes them stable (no StableOnAck; HoldLaterEpochs). CHECKPOINT, first
// on a stream, asks for a checkpoint at once (`librahost checkpoint
// --job`); the coordinator's host answers CHECKPOINTED once it is
// committed. The loss of a host other than the coordinator's is
// recovered from (host/job share_recover.go); the loss of the
// coordinator's stops the job with its committed epochs kept, and
// `submit --resume` continues it on the hosts left (daemon_resume.go:
// HELD? answered by HOLDS, what each host keeps of the job; PRINTED
// answered by KEPT, how far the stopped job's submitter printed; a
// PREPARE with Resume; submit_resume.go). A detached job whose first
// host (its submitter's and its coordinator's) is lost is resumed so by
// the next host of the job that answers (detach_takeover.go).
//
// A daemon records each job in its --data (host/jobrec, daemon_records.go)
// when it comes and when it ends, and keeps its ranks' output there, so
// that a restarted daemon lists its past jobs in STATUS. LOGS, first on a
// stream, asks for a job's kept output (`librahost logs`, `attach`):
// answered by LOGGED (the job's status here, or none), OUTPUT as kept
// (from the start or from now; following until the job ends here), and
// LOGGED again; Logs asks every host given and prints what those that
// answer keep, saying in one line which host's output is missing when
// one of the job's hosts is down or lost while followed. DETACH hands a whole job to a host (`submit --detach`):
// it runs Submit itself and answers DETACHED with the job's ID once every
// host has started it (detach.go). MIGRATE asks the host that runs a
// job's coordinator to move a rank, or drain or undrain a host, and is
// answered by MIGRATED once it ended; a drained host refuses PREPARE,
// also after a restart (the drain is kept under --data); a rank's state
// travels on a replica stream that HANDOVER opens, its last state in one
// FINAL, and a HANDOVER with cancel tells a target that a move is off
// (daemon_migrate.go).
//
// A daemon keeps its Prometheus metrics (host/metrics) in a registry of
// its own: Metrics serves them, Status reports what a STATUS would.
package node
