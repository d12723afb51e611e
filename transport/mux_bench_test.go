package transport

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkEndpointInProcess measures throughput between two workers on
// one host: one goroutine sends, one receives.
func BenchmarkEndpointInProcess(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			e, _ := NewEndpoint(EndpointConfig{Host: "a", Route: routeMod("a"), StableOnAck: true})
			defer e.Close()
			benchPair(b, e, e, size)
		})
	}
}

// BenchmarkEndpointPipe measures throughput between two workers on two
// Endpoints joined by an in-memory Pipe: encoding, batching, decoding and
// acks, without a network.
func BenchmarkEndpointPipe(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			route := routeMod("a", "b")
			ea, _ := NewEndpoint(EndpointConfig{Host: "a", Route: route, StableOnAck: true})
			eb, _ := NewEndpoint(EndpointConfig{Host: "b", Route: route, StableOnAck: true})
			defer ea.Close()
			defer eb.Close()
			la, lb := Pipe()
			ea.AddLink("b", la)
			eb.AddLink("a", lb)
			benchPair(b, ea, eb, size)
		})
	}
}

func benchPair(b *testing.B, from, to *Endpoint, size int) {
	payload := make([]byte, size)
	done := make(chan error)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := to.Recv(context.Background(), 1, 0, Any); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := from.Send(0, 1, 0, payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
