//go:build wasip1

package libra

import "unsafe"

func dataPtr(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return unsafe.SliceData(b)
}

func send(dst, tag int, data []byte) error {
	if err := checkRank(dst); err != nil {
		return err
	}
	for {
		seen := hostChanges()
		switch hostSend(int32(dst), int32(tag), dataPtr(data), int32(len(data))) {
		case errnoOK:
			return nil
		case errnoAgain: // the window is full: wait for acks
			waitHost(seen)
		default:
			return ErrRank
		}
	}
}

var recvBuf = make([]byte, 64<<10)

func recv(src, tag int) (Message, error) {
	if src != Any {
		if err := checkRank(src); err != nil {
			return Message{}, err
		}
	}
	for {
		seen := hostChanges()
		var info [3]int32
		switch hostRecv(int32(src), int32(tag), dataPtr(recvBuf), int32(len(recvBuf)), &info) {
		case errnoOK:
			return Message{Src: int(info[infoSrc]), Tag: int(info[infoTag]), Data: append([]byte(nil), recvBuf[:info[infoLen]]...)}, nil
		case errnoBig:
			recvBuf = make([]byte, info[infoLen])
		case errnoAgain:
			waitHost(seen)
		default:
			return Message{}, ErrRank
		}
	}
}
