package pipeline

import (
	"strings"
	"testing"
)

func TestRunJobNames(t *testing.T) {
	long := strings.Repeat("Model_", 20)
	for _, s := range []string{"pare-fmnist_resnet_op13-prune.ratio-0.3", long, long + "x"} {
		n := dnsLabel(s)
		if len(n) > 63 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.HasPrefix(n, "-") || strings.HasSuffix(n, "-") {
			t.Errorf("dnsLabel(%q) = %q", s, n)
		}
	}
	if dnsLabel(long) == dnsLabel(long+"x") {
		t.Error("long names that differ map to the same label")
	}
}
