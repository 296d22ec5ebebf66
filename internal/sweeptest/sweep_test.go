package sweeptest

import (
	"slices"
	"testing"
)

func TestPickSpreadsUnderShort(t *testing.T) {
	items := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
	got := Pick(items)
	if !testing.Short() {
		if !slices.Equal(got, items) {
			t.Fatalf("full mode trimmed the sweep: %v", got)
		}
		return
	}
	if want := []int{0, 4, 8}; !slices.Equal(got, want) {
		t.Fatalf("short mode picked %v, want %v", got, want)
	}
}

func TestPickKeepsShortLists(t *testing.T) {
	if got := Pick([]string{"a", "b"}); len(got) != 2 {
		t.Fatalf("a list shorter than ShortCount was trimmed: %v", got)
	}
}
