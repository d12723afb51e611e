package node

import "github.com/librahost/librahost/transport"

// FaultsFromEnv reads the fault injection of job links from
// $LIBRAHOST_FAULTS (transport.FaultsFromEnv), for Config.Faults.
func FaultsFromEnv() (transport.Faults, error) {
	f, _, err := transport.FaultsFromEnv()
	return f, err
}
