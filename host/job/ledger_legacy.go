package job

// The output ledger of a single run made by an earlier release had its
// own format: a header (magic, version), then by stream its counts
// (intent, done) and the identity of the file it wrote to (dev, ino,
// start); version 2 sealed each record (ledgerMap), version 1 did not. A
// job of one reads it into a job ledger of one rank, whose stream and
// rank counts are then both the run's (no prefix, no line held back).
const singleLedgerMagic = 0x4c49425241444752 // "LIBRADGR"

var (
	singleHeader = ledgerRec{0, 2}
	singleSlots  = [2]ledgerRec{{3, 2}, {6, 2}}
	singleIDs    = [2]ledgerRec{{9, 3}, {13, 3}}
)

// fromSingle converts the mapped ledger of a single run to a job ledger
// of one rank. It returns what could not be trusted ("" if nothing).
func (l *jobLedger) fromSingle() ledgerTrust {
	w, m := l.words, l.m
	var slots [2][2]int64
	var ids [2][3]int64
	var trust ledgerTrust
	switch {
	case w[1] == 1:
		for s := range 2 {
			copy(slots[s][:], w[2+2*s:])
			copy(ids[s][:], w[6+3*s:])
		}
	case w[1] == 2 && m.check(singleHeader):
		for s := range 2 {
			if m.check(singleSlots[s]) {
				copy(slots[s][:], w[singleSlots[s].off:])
			} else {
				l.badRank[s], trust = true, "is damaged"
			}
			if m.check(singleIDs[s]) {
				copy(ids[s][:], w[singleIDs[s].off:])
			}
		}
	default:
		l.init()
		for i := range l.badRank {
			l.badRank[i] = true
		}
		return "is damaged or belongs to another run"
	}
	l.init()
	for s := range 2 {
		ss := l.stream(s)
		ss[swIntent], ss[swDone] = slots[s][0], slots[s][1]
		ss[swDev], ss[swIno], ss[swStart] = ids[s][0], ids[s][1], ids[s][2]
		if ss[swIntent] != ss[swDone] { // a write was under way: bind settles it
			ss[swWho] = 1
		}
		m.seal(streamRec(s))
		copy(l.rank(0, s), slots[s][:])
		m.seal(rankRec(0, s))
	}
	return trust
}
