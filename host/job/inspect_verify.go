package job

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/librahost/librahost/ckpt"
)

// storeOf returns the checkpoint store file of stateDir, which must exist.
func storeOf(stateDir string) (string, error) {
	path := filepath.Join(stateDir, storeFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: state dir %s holds no checkpoint store (%s)", ErrNoCheckpoint, stateDir, storeFile)
	} else if err != nil {
		return "", err
	}
	return path, nil
}

// VerifyCheckpoints reads every checkpoint of stateDir in full (`librahost
// ckpt verify`) and says which are usable.
func VerifyCheckpoints(stateDir string) (*ckpt.ScrubResult, error) {
	path, err := storeOf(stateDir)
	if err != nil {
		return nil, err
	}
	st, err := ckpt.Open(ckpt.Config{Path: path})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.Scrub()
}

// RepairCheckpoints rebuilds a damaged checkpoint index of stateDir from
// what is readable (`librahost ckpt repair`).
func RepairCheckpoints(stateDir string) (*ckpt.RepairResult, error) {
	path, err := storeOf(stateDir)
	if err != nil {
		return nil, err
	}
	return ckpt.Repair(path)
}
