package transport

import "errors"

// Sentinel errors of the cluster TLS layer. Errors returned by InitCluster,
// AddHost and LoadHostTLS wrap one of them and read as one line naming the
// file or host concerned.
var (
	// ErrClusterExists: InitCluster found a cluster CA already in the
	// directory and refused to overwrite it.
	ErrClusterExists = errors.New("transport: cluster CA already exists")
	// ErrNoCluster: the directory holds no cluster CA.
	ErrNoCluster = errors.New("transport: no cluster CA")
	// ErrHostExists: the host already has a certificate.
	ErrHostExists = errors.New("transport: host certificate already exists")
	// ErrNoHost: the host has no certificate in the cluster directory.
	ErrNoHost = errors.New("transport: no certificate for host")
	// ErrBadHostName: a host name is empty, too long or has characters other
	// than letters, digits, '.', '_' and '-'.
	ErrBadHostName = errors.New("transport: bad host name")
	// ErrBadCert: a certificate or key file is unreadable, does not match or
	// was not issued by the cluster CA.
	ErrBadCert = errors.New("transport: bad certificate")
)
