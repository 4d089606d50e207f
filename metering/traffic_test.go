package metering

import (
	"strings"
	"testing"
)

func TestParseNetCounters(t *testing.T) {
	in := `# HELP container_network_receive_bytes_total Cumulative count of bytes received
# TYPE container_network_receive_bytes_total counter
container_network_receive_bytes_total{container="",interface="eth0",namespace="shop",pod="web-1"} 1000 1700000000000
container_network_receive_bytes_total{container="POD",interface="eth0",namespace="shop",pod="web-1"} 1200
container_network_receive_bytes_total{interface="eth1",namespace="shop",pod="web-1"} 5e+02
container_network_receive_bytes_total{interface="lo",namespace="shop",pod="web-1"} 99999
container_network_receive_bytes_total{id="/",interface="eth0"} 123456789
container_network_transmit_bytes_total{interface="eth0",namespace="shop",pod="web-1"} 300.5
container_network_transmit_bytes_total{name="a \"quoted\", value}",interface="eth0",namespace="data",pod="db-0"} 7
container_cpu_usage_seconds_total{container="web",namespace="shop",pod="web-1"} {broken
container_network_receive_bytes_total_other{namespace="shop",pod="web-1"} 1
`
	got, err := parseNetCounters(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[podRef]netCounters{
		// eth0 once (the larger of the two sandbox series) plus eth1; not lo.
		{"shop", "web-1"}: {rx: 1700, tx: 300.5},
		{"data", "db-0"}:  {tx: 7},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%v: got %+v, want %+v", k, got[k], w)
		}
	}
}

func TestParseNetCountersRefusesMalformedSeries(t *testing.T) {
	for _, line := range []string{
		`container_network_receive_bytes_total{namespace="shop",pod="web-1" 12`,
		`container_network_receive_bytes_total{namespace="shop,pod="web-1"} 12`,
		`container_network_receive_bytes_total{namespace=shop} 12`,
		`container_network_receive_bytes_total{namespace="shop",pod="web-1"}`,
		`container_network_transmit_bytes_total{namespace="shop",pod="web-1"} twelve`,
	} {
		if got, err := parseNetCounters(strings.NewReader(line + "\n")); err == nil {
			t.Errorf("%s: no error, got %v", line, got)
		}
	}
}

func TestDelta(t *testing.T) {
	for _, c := range []struct {
		prev, cur float64
		want      int64
	}{{100, 250, 150}, {100, 100, 0}, {5000, 40, 40} /* reset */, {0.5, 10.7, 10}} {
		if got := delta(c.prev, c.cur); got != c.want {
			t.Errorf("delta(%v, %v) = %d, want %d", c.prev, c.cur, got, c.want)
		}
	}
}
