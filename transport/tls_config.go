package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
)

// ALPN is the application protocol every librahost host offers and requires
// on the links that carry guest messages. Links on a host's shared socket
// use one protocol per job instead (JobALPN), the same protocol by
// another name.
const ALPN = "librahost/1"

// ControlALPN is the protocol of a host's control connections: job
// submission and status (host/node).
const ControlALPN = "librahost-ctl/1"

// LoadHostTLS reads host's key and certificate and the cluster CA from the
// cluster directory dir and returns a TLS configuration for both roles:
// as a server it requires and verifies a client certificate, as a client it
// verifies the server's; either way the peer's certificate must be issued by
// the cluster CA and no other, carry the cluster's ID and a valid host ID.
// TLS 1.3 only, ALPN "librahost/1". The returned Config may be cloned and
// used for any number of connections.
func LoadHostTLS(dir, host string) (*tls.Config, error) {
	return loadHostTLS(dir, host, ALPN)
}

// LoadControlTLS is LoadHostTLS for control connections: the same
// certificates and checks, with ALPN ControlALPN instead of ALPN.
func LoadControlTLS(dir, host string) (*tls.Config, error) {
	return loadHostTLS(dir, host, ControlALPN)
}

func loadHostTLS(dir, host, alpn string) (*tls.Config, error) {
	if err := checkHostName(host); err != nil {
		return nil, err
	}
	ca, err := readCert(filepath.Join(dir, tlsCAFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s", ErrNoCluster, dir)
		}
		return nil, err
	}
	clusterID, err := clusterIDOf(ca)
	if err != nil || !ca.IsCA {
		return nil, fmt.Errorf("%w: %s is not a librahost cluster CA", ErrBadCert, filepath.Join(dir, tlsCAFile))
	}
	crtPath, keyPath := hostFiles(dir, host)
	leaf, err := readCert(crtPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %s in %s", ErrNoHost, host, dir)
		}
		return nil, err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%w: %s does not match %s", ErrBadCert, keyPath, crtPath)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCert, crtPath, err)
	}
	if id, err := HostIDFromCert(leaf); err != nil || id != HostID(host) {
		return nil, fmt.Errorf("%w: %s is not host %s's certificate", ErrBadCert, crtPath, host)
	}

	v := &peerVerifier{roots: pool, clusterID: clusterID, alpn: alpn}
	return &tls.Config{
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{leaf.Raw},
			PrivateKey:  key,
			Leaf:        leaf,
		}},
		RootCAs:          pool,
		ClientCAs:        pool,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		NextProtos:       []string{alpn},
		VerifyConnection: v.verify,
	}, nil
}

// WithALPN returns a copy of cfg, a configuration from LoadHostTLS or
// LoadControlTLS, that offers and requires alpn instead: the same
// certificates and the same checks of the peer's. Other protocols between
// hosts (a job's control links, host/jobctl) use it on a host's socket.
func WithALPN(cfg *tls.Config, alpn string) (*tls.Config, error) {
	id, err := ClusterID(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.RootCAs == nil || alpn == "" {
		return nil, fmt.Errorf("%w: not a cluster host's TLS configuration", ErrBadCert)
	}
	c := cfg.Clone()
	c.NextProtos = []string{alpn}
	c.VerifyConnection = (&peerVerifier{roots: cfg.RootCAs, clusterID: id, alpn: alpn}).verify
	return c, nil
}

// peerVerifier checks, after the standard chain verification, that a peer's
// certificate belongs to this cluster and names a host.
type peerVerifier struct {
	roots     *x509.CertPool
	clusterID string
	alpn      string
}

func (v *peerVerifier) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: peer sent no certificate", ErrBadCert)
	}
	if _, job := JobFromALPN(cs.NegotiatedProtocol); cs.NegotiatedProtocol != v.alpn && !(v.alpn == ALPN && job) {
		return fmt.Errorf("transport: peer does not speak %s", v.alpn)
	}
	leaf := cs.PeerCertificates[0]
	// Verified again here, whatever the Config's other settings became
	// after cloning: only the cluster CA may have issued the peer's
	// certificate, for both client and server use.
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return fmt.Errorf("%w: peer %q: %v", ErrBadCert, leaf.Subject.CommonName, err)
	}
	if id, err := clusterIDOf(leaf); err != nil || id != v.clusterID {
		return fmt.Errorf("%w: peer %q is not of cluster %s", ErrBadCert, leaf.Subject.CommonName, v.clusterID)
	}
	if _, err := HostIDFromCert(leaf); err != nil {
		return err
	}
	return nil
}

// HostIDFromCert returns the host ID a cluster host certificate names.
// It does not verify the certificate.
func HostIDFromCert(c *x509.Certificate) (HostID, error) {
	name := c.Subject.CommonName
	if err := checkHostName(name); err != nil || c.IsCA || !slices.Contains(c.Subject.Organization, tlsOrg) {
		return "", fmt.Errorf("%w: %q names no librahost host", ErrBadCert, name)
	}
	return HostID(name), nil
}

// PeerHostID returns the host ID of the peer of a verified TLS connection.
func PeerHostID(cs tls.ConnectionState) (HostID, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("%w: peer sent no certificate", ErrBadCert)
	}
	return HostIDFromCert(cs.PeerCertificates[0])
}

func clusterIDOf(c *x509.Certificate) (string, error) {
	if len(c.Subject.OrganizationalUnit) != 1 || !slices.Contains(c.Subject.Organization, tlsOrg) {
		return "", fmt.Errorf("%w: %q has no cluster ID", ErrBadCert, c.Subject.CommonName)
	}
	return c.Subject.OrganizationalUnit[0], nil
}

// ClusterID returns the cluster ID in the certificate of a configuration
// from LoadHostTLS, for HELLO frames and status output.
func ClusterID(cfg *tls.Config) (string, error) {
	if cfg == nil || len(cfg.Certificates) == 0 {
		return "", fmt.Errorf("%w: no host certificate", ErrBadCert)
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		if len(cfg.Certificates[0].Certificate) == 0 {
			return "", fmt.Errorf("%w: no host certificate", ErrBadCert)
		}
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return "", fmt.Errorf("%w: %v", ErrBadCert, err)
		}
	}
	return clusterIDOf(leaf)
}

// SharedListenTLS is the TLS configuration of a host's shared socket: a
// connection that asks for ControlALPN gets control (unless it is nil),
// one that asks for the JobALPN of a job that hasJob reports gets data
// with that protocol, and any other is refused.
func SharedListenTLS(control, data *tls.Config, hasJob func(job string) bool) *tls.Config {
	c := data.Clone()
	c.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		for _, p := range chi.SupportedProtos {
			if p == ControlALPN && control != nil {
				return control, nil
			}
			if job, ok := JobFromALPN(p); ok && hasJob(job) {
				jc := data.Clone()
				jc.NextProtos = []string{p}
				return jc, nil
			}
		}
		return nil, fmt.Errorf("transport: no protocol of this host among %q", chi.SupportedProtos)
	}
	return c
}
