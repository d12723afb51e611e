// Package jobctl is the control plane of one job between its hosts: the
// I/O driver that carries the checkpoint protocol's messages (ckpt.Msg)
// between the coordinator's host and every participant host, and tells
// the protocol cores (ckpt.EpochCoordinator, ckpt.Participant) who was
// heard when. It holds no protocol rule: the cores do.
//
// The hosts of a job form a star: every participant host keeps one
// stream to the coordinator's host, a QUIC connection with ALPN
// librahost-jobctl/1 on the hosts' own UDP sockets and cluster TLS (the
// daemon hands the Hub the connections it accepts with that ALPN, as it
// hands job links to their transport). A participant redials whenever its
// stream breaks, or hears nothing on it for the failure timeout.
//
// On a stream go frames (frame.go): HELLO first both ways, then MSG
// frames carrying one ckpt.Msg each (ckpt.AppendMsg) and, when nothing
// else was sent for a quarter of the failure timeout, a BEAT. Every frame
// names its job and the sender's incarnation: a frame of another job, or
// of an incarnation older than this host's (SetInc), is dropped unheard,
// so a host declared dead that comes back cannot speak for the job. MSG
// frames are numbered per peer and acked on the frames coming back; the
// messages a broken stream may have lost are sent again on the next one
// and duplicates are dropped, so each arrives once and in order while
// both Endpoints live (a restarted peer starts afresh).
//
// A driver owns the cores and one Endpoint per job and host:
//
//	ep, _ := hub.Open(jobctl.Config{Job: id, Hosts: names, Self: me,
//		Coordinator: 0, CoordinatorAddr: addr, FailureTimeout: ft})
//	for {
//		select {
//		case r := <-ep.Recv():       // Msg from r.From, arrived at r.At
//			core.Step(r.Msg, r.At)
//		case now := <-ticker.C:
//			ep.TellCoordinator(coord)    // who was heard when (LastHeard)
//			coord.Tick(now)              // declares the silent hosts lost
//			ep.TellParticipant(part)
//			part.Tick(now)               // stops if the coordinator's host is
//		}
//		rd := core.Ready()
//		for _, m := range rd.Msgs { ep.Send(m.To, m) }
//		ep.SetInc(core.Inc())
//	}
//
// LastHeard is the time of the newest frame from a host (any frame: a
// message or a heartbeat), recorded as it arrives, so a driver that falls
// behind on Recv does not declare a host lost that is not; TellCoordinator
// and TellParticipant pass it to the cores. With the
// default failure timeout of 2 s and a tick of 50 ms, a host that dies is
// declared lost 1.5 to 2.05 s after its death (bench/RESULTS.md).
//
// A job submitted with checkpoints uses it (host/node opens the
// Endpoint, host/job's Share drives the cores with it); a job without
// checkpoints opens none.
package jobctl
