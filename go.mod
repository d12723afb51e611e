module github.com/librahost/librahost

go 1.26.0

require (
	github.com/klauspost/compress v1.20.4
	github.com/librahost/librahost/guest-sdk v0.0.0
	github.com/quic-go/quic-go v0.65.0
	github.com/tetratelabs/wazero v1.12.0
	github.com/zeebo/xxh3 v1.1.0
	go.etcd.io/bbolt v1.5.0
	golang.org/x/sys v0.47.0
)

require (
	github.com/klauspost/cpuid/v2 v2.2.10 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/net v0.56.0 // indirect
)

replace github.com/librahost/librahost/guest-sdk => ./guest-sdk
