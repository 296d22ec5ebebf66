package progress

import (
	"context"
	"testing"
)

func TestReportReachesTheFuncInTheContext(t *testing.T) {
	var got []int
	ctx := With(context.Background(), func(stage string, done, total int) {
		if stage != "layers" || total != 3 {
			t.Errorf("got stage %q total %d", stage, total)
		}
		got = append(got, done)
	})
	for i := range 3 {
		Report(ctx, "layers", i+1, 3)
	}
	if len(got) != 3 || got[2] != 3 {
		t.Fatalf("reports %v, want 1 2 3", got)
	}
}

func TestReportWithoutFuncIsQuiet(t *testing.T) {
	called := false
	ctx := Without(With(context.Background(), func(string, int, int) { called = true }))
	Report(ctx, "inner", 1, 1)
	if called {
		t.Fatal("Without did not hide the Func")
	}
	Report(context.Background(), "layers", 1, 1) // must not panic
	if ctx := With(context.Background(), nil); ctx.Value(key{}) != nil {
		t.Fatal("a nil Func was stored")
	}
}
