package job

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/jobctl"
)

// closedControl is control streams that closed: Recv's channel is closed.
type closedControl struct{ c chan jobctl.Received }

func (closedControl) Send(ckpt.HostID, ckpt.Msg) error       { return nil }
func (c closedControl) Recv() <-chan jobctl.Received         { return c.c }
func (closedControl) SetInc(uint64)                          {}
func (closedControl) TellCoordinator(*ckpt.EpochCoordinator) {}
func (closedControl) TellParticipant(*ckpt.Participant)      {}

// A share logs what its part in the protocol cost however its rounds end:
// its control streams closing before its Stop (the job ended on every
// host at once) left the line out, and a test that counts control
// messages per host and epoch waited for it in vain.
func TestShareLoopLogsControlMessages(t *testing.T) {
	ctl := closedControl{make(chan jobctl.Received)}
	close(ctl.c)
	var log bytes.Buffer
	r := &shareRun{j: &jobRun{cfg: Config{Log: &log}},
		s:    &Share{Control: ctl, Tick: time.Hour, Stop: make(chan struct{})},
		sent: 4, recvd: 6, rounds: 2}
	r.loop(context.Background())
	if !strings.Contains(log.String(), "control messages: 4 sent, 6 received, 2 rounds") {
		t.Fatalf("the share's rounds ended on closed control streams and logged:\n%s", log.String())
	}
}
