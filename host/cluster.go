package host

import "github.com/librahost/librahost/transport"

// InitCluster makes a cluster's CA and a certificate for each host (a
// host is "name" or "name=addr1,addr2" with its IP addresses or DNS
// names) in dir. Hosts of a cluster accept only each other.
func InitCluster(dir string, hosts []string) error { return transport.InitCluster(dir, hosts) }

// AddClusterHost issues a certificate for one more host of the cluster in
// dir.
func AddClusterHost(dir, host string, addrs ...string) error {
	return transport.AddHost(dir, host, addrs...)
}
