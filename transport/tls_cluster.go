package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A cluster directory holds
//
//	ca.crt            the cluster CA certificate (PEM)
//	ca.key            its private key (PKCS #8 PEM, mode 0600)
//	hosts/NAME.crt    host NAME's certificate, signed by the CA
//	hosts/NAME.key    host NAME's private key (mode 0600)
//
// Every certificate's subject has Organization "librahost" and the cluster
// ID as OrganizationalUnit; a host certificate's CommonName is its host ID.
const (
	tlsCAFile      = "ca.crt"
	tlsCAKeyFile   = "ca.key"
	tlsHostsDir    = "hosts"
	tlsOrg         = "librahost"
	tlsCAValidity  = 20 * 365 * 24 * time.Hour
	tlsCrtValidity = 10 * 365 * 24 * time.Hour
	tlsClockSkew   = time.Hour
	maxHostNameLen = 63
)

// HostID names a host of a cluster. It is the CommonName of the host's
// certificate, so a peer's HostID is known once its certificate is verified.
type HostID string

// InitCluster makes a new cluster in dir: a self-signed ECDSA P-256 CA with a
// fresh random cluster ID, and a key and certificate for each host. A host is
// given as "name" or "name=addr1,addr2,...": its certificate is valid for
// the name, localhost, 127.0.0.1, ::1 and each extra address (an IP address
// or a DNS name). InitCluster refuses to overwrite an existing CA.
func InitCluster(dir string, hosts []string) error {
	specs := make([]hostSpec, 0, len(hosts))
	seen := make(map[string]bool)
	for _, h := range hosts {
		s, err := parseHostSpec(h)
		if err != nil {
			return err
		}
		if seen[s.name] {
			return fmt.Errorf("%w: %q given twice", ErrBadHostName, s.name)
		}
		seen[s.name] = true
		specs = append(specs, s)
	}
	for _, f := range []string{tlsCAFile, tlsCAKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%w in %s", ErrClusterExists, dir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("transport: cluster init: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, tlsHostsDir), 0o700); err != nil {
		return fmt.Errorf("transport: cluster init: %w", err)
	}

	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fmt.Errorf("transport: cluster init: %w", err)
	}
	clusterID := hex.EncodeToString(idb[:])
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("transport: cluster init: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject: pkix.Name{
			Organization:       []string{tlsOrg},
			OrganizationalUnit: []string{clusterID},
			CommonName:         "librahost cluster CA " + clusterID,
		},
		NotBefore:             now.Add(-tlsClockSkew),
		NotAfter:              now.Add(tlsCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("transport: cluster init: %w", err)
	}
	// The key first: a ca.crt without its key is a broken cluster, while a
	// lone ca.key is still refused by the existence check above.
	if err := writeKey(filepath.Join(dir, tlsCAKeyFile), key); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, tlsCAFile), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("transport: cluster init: %w", err)
	}
	for _, s := range specs {
		if err := issueHost(dir, ca, key, s); err != nil {
			return err
		}
	}
	return nil
}

// AddHost issues a key and certificate for one more host of the cluster in
// dir, valid for the host name, localhost, the loopback addresses and addrs.
// It refuses to replace a host's existing certificate.
func AddHost(dir, host string, addrs ...string) error {
	if err := checkHostName(host); err != nil {
		return err
	}
	s := hostSpec{name: host}
	for _, a := range addrs {
		if err := s.addAddr(a); err != nil {
			return err
		}
	}
	ca, key, err := loadCA(dir)
	if err != nil {
		return err
	}
	return issueHost(dir, ca, key, s)
}

type hostSpec struct {
	name string
	dns  []string
	ips  []net.IP
}

func parseHostSpec(s string) (hostSpec, error) {
	name, addrs, hasAddrs := strings.Cut(s, "=")
	if err := checkHostName(name); err != nil {
		return hostSpec{}, err
	}
	h := hostSpec{name: name}
	if hasAddrs {
		for a := range strings.SplitSeq(addrs, ",") {
			if err := h.addAddr(a); err != nil {
				return hostSpec{}, err
			}
		}
	}
	return h, nil
}

func (h *hostSpec) addAddr(a string) error {
	a = strings.TrimSpace(a)
	if ip := net.ParseIP(a); ip != nil {
		h.ips = append(h.ips, ip)
		return nil
	}
	if a == "" || len(a) > 253 || strings.ContainsAny(a, " /:@\\\t") {
		return fmt.Errorf("transport: host %s: bad address %q: want an IP address or a DNS name", h.name, a)
	}
	h.dns = append(h.dns, a)
	return nil
}

func checkHostName(name string) error {
	if name == "" || len(name) > maxHostNameLen || name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("%w: %q", ErrBadHostName, name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q", ErrBadHostName, name)
		}
	}
	return nil
}

func issueHost(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, h hostSpec) error {
	crtPath, keyPath := hostFiles(dir, h.name)
	for _, p := range []string{crtPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s (%s)", ErrHostExists, h.name, p)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, tlsHostsDir), 0o700); err != nil {
		return fmt.Errorf("transport: host %s: %w", h.name, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("transport: host %s: %w", h.name, err)
	}
	dns := []string{h.name, "localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip := net.ParseIP(h.name); ip != nil {
		ips = append(ips, ip)
	}
	dns = appendNew(dns, h.dns...)
	for _, ip := range h.ips {
		dup := false
		for _, have := range ips {
			dup = dup || have.Equal(ip)
		}
		if !dup {
			ips = append(ips, ip)
		}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject: pkix.Name{
			Organization:       []string{tlsOrg},
			OrganizationalUnit: ca.Subject.OrganizationalUnit,
			CommonName:         h.name,
		},
		NotBefore:   now.Add(-tlsClockSkew),
		NotAfter:    now.Add(tlsCrtValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("transport: host %s: %w", h.name, err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(crtPath, "CERTIFICATE", der, 0o644)
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		dup := false
		for _, have := range list {
			dup = dup || strings.EqualFold(have, m)
		}
		if !dup {
			list = append(list, m)
		}
	}
	return list
}

func hostFiles(dir, host string) (crt, key string) {
	base := filepath.Join(dir, tlsHostsDir, host)
	return base + ".crt", base + ".key"
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("transport: crypto/rand failed: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("transport: %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM writes one PEM block to path through a temporary file and a
// rename, refusing to replace an existing file.
func writePEM(path, typ string, der []byte, mode fs.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	// A hard link fails if path exists, unlike a rename.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("transport: write %s: file exists", path)
		}
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	return nil
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ca, err := readCert(filepath.Join(dir, tlsCAFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w in %s", ErrNoCluster, dir)
		}
		return nil, nil, err
	}
	keyPath := filepath.Join(dir, tlsCAKeyFile)
	k, err := readKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA || !k.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("%w: %s does not match %s", ErrBadCert, keyPath, tlsCAFile)
	}
	return ca, k, nil
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != typ {
		return nil, fmt.Errorf("%w: %s: no PEM %s block", ErrBadCert, path, typ)
	}
	return b.Bytes, nil
}

func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCert, path, err)
	}
	return c, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCert, path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: not an ECDSA key", ErrBadCert, path)
	}
	return ek, nil
}

// KeyedHosts returns, sorted, the hosts whose key and certificate are both
// in the cluster directory dir: the identities this machine can take.
func KeyedHosts(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, tlsHostsDir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s", ErrNoCluster, dir)
		}
		return nil, fmt.Errorf("transport: %v", err)
	}
	var hosts []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok || checkHostName(name) != nil {
			continue
		}
		crt, _ := hostFiles(dir, name)
		if _, err := os.Stat(crt); err == nil {
			hosts = append(hosts, name)
		}
	}
	sort.Strings(hosts)
	return hosts, nil
}
