package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"
)

// QueryStatus asks every host in addrs for its status, at once. A host
// that cannot be reached gets an error in its place.
func QueryStatus(ctx context.Context, c Client, addrs []string) ([]HostStatus, []error, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	timeout := c.dialTimeout()
	sts, errs := eachHost(addrs, func(a string) (HostStatus, error) { return queryOne(ctx, a, timeout, tc) })
	return sts, errs, nil
}

func queryOne(ctx context.Context, addr string, timeout time.Duration, tc *tls.Config) (HostStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h, err := dialHost(ctx, addr, tc, timeout)
	if err != nil {
		return HostStatus{}, err
	}
	defer h.conn.CloseWithError(0, "")
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		return HostStatus{}, hostError(addr, err)
	}
	if err := writeMsg(str, msgStatusQuery, nil); err != nil {
		return HostStatus{}, hostError(addr, err)
	}
	str.Close()
	t, b, err := readMsg(str)
	if err != nil {
		return HostStatus{}, hostError(addr, err)
	}
	if t != msgStatus {
		return HostStatus{}, fmt.Errorf("%w: host %s sent %s", ErrProtocol, addr, t)
	}
	var st HostStatus
	if err := decodeJSON(t, b, &st); err != nil {
		return HostStatus{}, err
	}
	if st.Host != h.id {
		return HostStatus{}, errors.New("node: host " + addr + " reports another name than its certificate's")
	}
	return st, nil
}

// eachHost calls f for every address at once and returns the results in
// the addresses' order.
func eachHost[T any](addrs []string, f func(addr string) (T, error)) ([]T, []error) {
	res := make([]T, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = f(a)
		}()
	}
	wg.Wait()
	return res, errs
}
