package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/librahost/librahost/transport"
)

var (
	descSent = prometheus.NewDesc("librahost_link_messages_sent_total",
		"Guest messages sent to other hosts over job links (first transmissions).", nil, nil)
	descResent = prometheus.NewDesc("librahost_link_messages_resent_total",
		"Guest messages sent again over job links (retransmit timeouts, reconnects).", nil, nil)
	descAcked = prometheus.NewDesc("librahost_link_messages_acked_total",
		"Guest messages sent to other hosts that their receivers acknowledged.", nil, nil)
	descReceived = prometheus.NewDesc("librahost_link_messages_received_total",
		"Guest messages received from other hosts over job links, duplicates included.", nil, nil)
	descDuplicates = prometheus.NewDesc("librahost_link_messages_duplicate_total",
		"Guest messages received again after they were delivered, and dropped.", nil, nil)
	descBytesSent = prometheus.NewDesc("librahost_link_sent_bytes_total",
		"Bytes sent over job links.", nil, nil)
	descBytesRecv = prometheus.NewDesc("librahost_link_received_bytes_total",
		"Bytes received over job links.", nil, nil)
	descStableAcks = prometheus.NewDesc("librahost_link_stable_acks_total",
		"Acknowledgements sent on their own to carry stability on a channel quiet since a commit.", nil, nil)
	descStaleLinks = prometheus.NewDesc("librahost_link_stale_refused_total",
		"Job links refused because the peer was of an older incarnation of the job.", nil, nil)
	descDiscarded = prometheus.NewDesc("librahost_link_messages_discarded_total",
		"Guest messages that arrived for ranks whose programs had ended, and were dropped.", nil, nil)
	linkDescs = []*prometheus.Desc{descSent, descResent, descAcked, descReceived, descDuplicates, descBytesSent, descBytesRecv,
		descStableAcks, descStaleLinks, descDiscarded}
)

// collectLinks reports the counters of job links.
func collectLinks(ch chan<- prometheus.Metric, l transport.Counters) {
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descSent, l.Sent}, {descResent, l.Resent}, {descAcked, l.Acked}, {descReceived, l.Received}, {descDuplicates, l.Duplicates},
		{descBytesSent, l.BytesSent}, {descBytesRecv, l.BytesRecv},
		{descStableAcks, l.StableAcks}, {descStaleLinks, l.StaleLinks}, {descDiscarded, l.Discarded}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}
