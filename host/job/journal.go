package job

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/wasi"
)

// journalState is what a resume knows of a guest's file journal before it
// chooses the checkpoint: the epochs the journal can return the files to.
// A guest with mounted directories can resume only from those (a damaged
// seal makes it fall back an epoch, as a damaged chunk does); a guest with
// none has no files to roll back and needs no journal: one that is damaged
// or missing is started anew at the checkpoint restored.
type journalState struct {
	path   string
	epochs []uint64
	what   string // what is wrong with it, for a message; "" if whole
	needed bool   // the guest has mounts
	moved  bool   // the rank's files were made here from its checkpoints (moveFiles)
}

func readJournalState(path string, mounts int) *journalState {
	js := &journalState{path: path, needed: mounts > 0}
	epochs, damage, err := wasi.JournalEpochs(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		js.what = "is missing"
	case err != nil:
		js.what = "cannot be read (" + err.Error() + ")"
	case damage != "":
		js.what = "is " + damage
	}
	js.epochs = epochs
	return js
}

// has reports whether the journal can return the files to epoch.
func (js *journalState) has(epoch uint64) bool { return slices.Contains(js.epochs, epoch) }

// serves reports whether a resume from epoch can have its files right.
func (js *journalState) serves(epoch uint64) bool { return !js.needed || js.has(epoch) }

// problem describes why the journal cannot return the files to epoch.
func (js *journalState) problem(epoch uint64) string {
	if js.what != "" {
		return "the file journal " + js.path + " " + js.what
	}
	return fmt.Sprintf("the file journal %s does not reach checkpoint %d", js.path, epoch)
}

// refuse is the one-line refusal of a resume whose files cannot be
// returned to any checkpoint.
func (js *journalState) refuse(epoch uint64) error {
	return fmt.Errorf("%w: %s: the files in the mounted directories cannot be returned to checkpoint %d; restore them and the journal from a backup, or start the run over with another --state",
		ErrDamagedState, js.problem(epoch), epoch)
}

// rollback returns w's files to epoch, or, when the journal cannot and
// the guest has no files, starts a new journal at epoch with a warning.
func (js *journalState) rollback(w *host.Worker, epoch uint64, log io.Writer, who string) error {
	if epoch == 0 && js.what == "" && len(js.epochs) == 0 {
		// Killed as the journal was being created, before the guest ran.
		_, err := w.CheckpointFiles(0)
		return err
	}
	if js.moved {
		// Its files are as of epoch: the journal starts there.
		_, err := w.CheckpointFiles(epoch)
		return err
	}
	if js.has(epoch) || js.needed {
		warnings, err := w.RollbackFiles(epoch)
		for _, msg := range warnings {
			fmt.Fprintf(log, "librahost: warning: %s%s\n", who, msg)
		}
		return err
	}
	fmt.Fprintf(log, "librahost: warning: %s%s; the guest has no mounted directories, so a new journal starts at checkpoint %d\n", who, js.problem(epoch), epoch)
	os.Remove(js.path)
	os.RemoveAll(js.path + ".trash")
	_, err := w.CheckpointFiles(epoch)
	return err
}
