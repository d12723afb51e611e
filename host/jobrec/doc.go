// Package jobrec keeps a host daemon's records of its jobs, and their
// output, in its --data directory, so that a restarted daemon still lists
// the jobs it ran (how and when each ended, and why) and `librahost logs`
// and `librahost attach` can replay a job's output after its submitter
// has gone.
//
// Records are kept in DIR/jobs.db (bbolt): one JSON Record per job, by
// the order in which the jobs came, at most Config.Keep (1,000) of them;
// the oldest ended one goes (with its output) when a new one comes. A
// record without an end is a job that ran when its daemon stopped
// (Unended lists them at the next start).
//
// Each job's output here (every rank's stdout and stderr, as the job's
// host wrote it) is a log of frames under DIR/output/JOB/, in segment
// files of an eighth of Config.MaxOutput each:
//
//	frame: length u32 | crc32c u32 | rank u32 | stream u8 | offset u64 | bytes
//
// (big-endian; length counts the bytes, the checksum covers rank to the
// bytes' end; offset is where the bytes begin in the rank's stream). A
// log keeps the newest output of its job: once it holds more than
// MaxOutput (64 MiB), its oldest segments are removed, so a reader from
// the start finds a rank's stream begin past offset 0 (the bytes before
// are gone). Over the jobs that have ended, the output of the newest ones
// is kept up to Config.MaxTotal (1 GiB); older jobs keep their records
// with OutputGone set. Appends go to the page cache, not to the disk:
// output survives the daemon's death, not always the machine's.
//
// A Reader reads a log from its start or from now, and with follow waits
// for what its job writes next until the log is finished. Frames are
// written whole under the log's lock and read up to the size seen under
// it, so a reader never sees part of one; a damaged frame (on disk) ends
// the read with ErrDamaged.
package jobrec
